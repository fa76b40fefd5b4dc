// Size probe: what a cellular device bundles of hal/espruino (createEspruinoHal + createCellular).
import { createEspruinoHal, createCellular } from '../../hal/espruino/index';

const hal = createEspruinoHal();
const net = createCellular(hal, { apn: 'iot', rx: 26, tx: 27, pwrkeyPin: 4, resetPin: 5 });
(global as any).wrenHal = { hal: hal, net: net };
