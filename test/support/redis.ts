export { startRedis } from '../../packages/cli/src/bench/local-servers';
