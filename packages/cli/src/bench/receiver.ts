/**
 * Bench receiver (a child process): a Forward server that acks every chunk
 * and reports its event count to the parent over IPC.
 */
import { ForwardServer } from '@tributary/forward-protocol';

let events = 0;
const server = new ForwardServer({
  port: 0,
  udpHeartbeat: false,
  consume: async (chunks) => {
    for (const c of chunks) events += c.count;
  },
});
server.listen().then(({ port }) => process.send?.({ port }));
setInterval(() => process.send?.({ events }), 20).unref();
process.on('disconnect', () => process.exit(0));
