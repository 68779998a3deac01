export * from './chunk-buffer';
export * from './disk-buffer';
export * from './memory-buffer';
export * from './registry';
