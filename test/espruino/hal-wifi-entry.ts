// Size probe: what a Wi-Fi device bundles of hal/espruino (createEspruinoHal + createWifi).
import { createEspruinoHal, createWifi } from '../../hal/espruino/index';

const hal = createEspruinoHal();
const net = createWifi(hal, { ssid: 'ssid', password: 'password', powersave: 'min' });
(global as any).wrenHal = { hal: hal, net: net };
