import { leastOutstanding } from '../../src/balancer/pick/least-outstanding.ts';
import { powerOfTwo } from '../../src/balancer/pick/power-of-two.ts';
import { roundRobin } from '../../src/balancer/pick/round-robin.ts';
import { pickerConformance } from '../conformance/picker-conformance.ts';

pickerConformance('least-outstanding', () => leastOutstanding());
pickerConformance('round-robin', () => roundRobin(), { loadAware: false });
pickerConformance('power-of-two', () => powerOfTwo());
