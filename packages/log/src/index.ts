export * from './durable-log';
export * from './embedded-log';
export * from './embedded-spec';
export * from './kafka-log';
export * from './kafka-spec';
export * from './registry';
export * from './spec';
