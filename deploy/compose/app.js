// A small app logging through fluent-logger to the forwarder, with acks.
const logger = require('fluent-logger').createFluentSender('demo', {
  host: 'forwarder',
  port: 24224,
  requireAckResponse: true,
  reconnectInterval: 1000,
});
let n = 0;
setInterval(() => {
  n++;
  logger.emit('web', { n, msg: `GET /orders/${n} 200`, duration_ms: Math.round(Math.random() * 100) });
}, 100);
