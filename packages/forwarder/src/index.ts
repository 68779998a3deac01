export * from './buffer/chunk-buffer';
export * from './buffer/disk-buffer';
export * from './buffer/memory-buffer';
export * from './config';
export * from './forwarder';
export * from './metrics';
export * from './output/forward-output';
