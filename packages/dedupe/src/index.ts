export * from './dedupe-store';
export * from './embedded-dedupe';
export * from './embedded-spec';
export * from './none-spec';
export * from './redis-dedupe';
export * from './redis-spec';
export * from './registry';
export * from './spec';
