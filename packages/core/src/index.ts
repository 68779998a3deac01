export * from './backoff';
export * from './config';
export * from './errors';
export * from './fs';
export * from './logger';
export * from './metrics';
export * from './writev';
