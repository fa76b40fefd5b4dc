// The Node HAL: real sockets (node:net, node:tls), file-backed storage, the real clock and timer.

export { NodeClock, NodeTimerHost } from './clock';
export { NodeTransport, toTransportError } from './transport';
export { FileStorage, encodeRecordName, decodeRecordName } from './storage';
export type { FileStorageOptions } from './storage';
export { NodeRandom, ConsoleLog, NodePower, NodeLink } from './misc';
