// The shared balancer conformance suite on the built-in (Node) engine.
import { balancerConformance } from '../conformance/balancer-conformance.ts';

balancerConformance({ engine: 'builtin' });
