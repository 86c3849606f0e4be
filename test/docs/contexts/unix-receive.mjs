// `socket`: one end of a seqpacket pair; the other sends two messages and closes.
import { unixSocketPair } from 'interprocess';

const [socket, peer] = unixSocketPair({ type: 'seqpacket' });
globalThis.socket = socket;
await peer.send('one');
await peer.send('two');
await peer.close();
