// The harnesses use the same free-port helper as the fleet and the HAProxy engine.
export { freePort } from '../../src/free-port.ts';
