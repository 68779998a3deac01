export * from './forward/config';
export * from './forward/forward-input';
export * from './http/config';
export * from './http/http-input';
export * from './input';
export * from './pieces';
