// The shared balancer conformance suite on the HAProxy engine (needs haproxy 2.6+; npm test installs it).
import { balancerConformance, type EngineUnderTest } from '../conformance/balancer-conformance.ts';
import { h2Conformance } from '../conformance/h2-conformance.ts';
import { tlsConformance } from '../conformance/tls-conformance.ts';

const haproxy: EngineUnderTest = {
  engine: 'haproxy',
  skip: {
    panic: 'HAProxy has no panic mode: a backend with every server down answers 503',
    wsCloseCode:
      'HAProxy ends a tunnel by closing the connection (shutdown sessions); it cannot write a WebSocket close frame',
    exactGroupSplit: 'groups are drawn at random (rand) in HAProxy, not by smooth weighted round-robin',
    h2OtherSettings:
      'HAProxy advertises only the stream and window limits: no SETTINGS_MAX_HEADER_LIST_SIZE (its header limit is tune.bufsize, applied all the same) and no ENABLE_PUSH (it never pushes)',
    h2ResetGoaway:
      'HAProxy 2.6 has no rapid-reset bound per connection: it forwards reset streams at the rate it can (about half of 1,000 reached the clone) and never sends ENHANCE_YOUR_CALM; later HAProxy versions count such "glitches"',
    h2LengthWithoutData:
      'HAProxy 2.6 answers a request whose content-length announces a body while END_STREAM on its HEADERS says there is none',
    h2HostAuthority:
      'HAProxy 2.6 forwards an HTTP/2 request whose Host names another authority than :authority',
  },
};

balancerConformance(haproxy);
tlsConformance(haproxy);
h2Conformance(haproxy);
