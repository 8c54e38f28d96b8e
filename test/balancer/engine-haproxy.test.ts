// The shared balancer conformance suite on the HAProxy engine (needs haproxy 2.6+; npm test installs it).
import { balancerConformance } from '../conformance/balancer-conformance.ts';

balancerConformance({
  engine: 'haproxy',
  skip: {
    panic: 'HAProxy has no panic mode: a backend with every server down answers 503',
    wsCloseCode:
      'HAProxy ends a tunnel by closing the connection (shutdown sessions); it cannot write a WebSocket close frame',
    exactGroupSplit: 'groups are drawn at random (rand) in HAProxy, not by smooth weighted round-robin',
  },
});
