export * from './config';
export * from './forwarder';
export * from './metrics';
export * from './output/config';
export * from './output/forward-output';
