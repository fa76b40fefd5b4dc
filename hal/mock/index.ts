// The mock HAL: virtual time, scripted network/link, in-memory storage with power loss, deterministic
// randomness, captured logs. For tests and simulations on Node.

export { VirtualClock } from './clock';
export type { VirtualClockOptions } from './clock';
export { MockNetwork, MockTransport, MockPeer, MockListener } from './transport';
export type { ListenOptions } from './transport';
export { MemoryStorage, PowerLoss, checkRecordName, MAX_NAME_LENGTH } from './storage';
export type { MemoryStorageOptions } from './storage';
export { ScriptedLink } from './link';
export type { ScriptedLinkOptions, LinkState } from './link';
export { MockPower } from './power';
export type { SleepRecord } from './power';
export { SeededRandom, FixedRandom } from './random';
export { MemoryLog } from './log';
export type { LogLine } from './log';
