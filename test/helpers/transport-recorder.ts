// The TransportHandler the transport tests (Node, Espruino net, cellular modem) record with: every
// event goes to `ev` by name ("open", "data", "drain", "error:<code>", "close"); data and errors are
// pushed to rec.data and rec.errors (read at each event: a test may replace the arrays). Data must
// arrive as Uint8Array.
import { expect } from 'vitest';
import type { TransportError, TransportHandler } from '../../hal/types';

export function transportRecorder(ev: (name: string) => void, rec: { data: Uint8Array[]; errors: TransportError[] }): TransportHandler {
  return {
    onOpen: () => ev('open'),
    onData: (b) => {
      expect(b).toBeInstanceOf(Uint8Array);
      rec.data.push(b);
      ev('data');
    },
    onDrain: () => ev('drain'),
    onError: (e) => {
      rec.errors.push(e);
      ev('error:' + e.code);
    },
    onClose: () => ev('close'),
  };
}
