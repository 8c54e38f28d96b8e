import { usageError } from '../errors.ts';
import { startHostAgent } from '../fleet/host-agent.ts';
import { int, parse, positionals } from './args.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones agent --home DIR --bind ADDRESS [--port P]

The host agent, run on each host by "clones setup" (a systemd unit, or a detached process): it keeps the
host's desired state in DIR and supervises the host's clones, which listen on ADDRESS. Its API listens on
ADDRESS:P (default 7077) and wants the bearer token in DIR/agent-token. Stopping the agent leaves the
clones running; the next agent takes them over.

Options:
  --home DIR            the host's clones directory
  --bind ADDRESS        the host address the agent and its clones listen on
  --port P              the agent's port (default 7077)`;

export const agent: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      bind: { type: 'string' },
      port: { type: 'string' },
    });
    positionals(args, 0, 'clones agent --home DIR --bind ADDRESS');
    if (!values.home) throw usageError('--home is required');
    if (!values.bind) throw usageError('--bind is required');
    const running = await startHostAgent({
      home: values.home,
      bind: values.bind,
      port: int('--port', values.port, 1, 65_535) ?? 7077,
    });
    console.log(`clones agent: ${values.bind}:${running.address.port} pid ${process.pid}`);
    return await new Promise<number>((resolve) => {
      const stop = () => running.close().then(() => resolve(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};
