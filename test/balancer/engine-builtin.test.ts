// The shared balancer conformance suites on the built-in (Node) engine.
import { balancerConformance } from '../conformance/balancer-conformance.ts';
import { h2Conformance } from '../conformance/h2-conformance.ts';
import { tlsConformance } from '../conformance/tls-conformance.ts';

balancerConformance({ engine: 'builtin' });
tlsConformance({ engine: 'builtin' });
h2Conformance({ engine: 'builtin' });
