// A local-socket server on nsName('my-app') that ends every connection; it does not keep the
// process alive.
import { listen, nsName } from 'interprocess';

const listener = await listen(nsName('my-app'));
listener.on('connection', (conn) => conn.end());
listener.unref();
