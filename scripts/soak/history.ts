// The soak's record of what happened, from the client's side only: every request a simulated user sent and
// what came back (with the client's clock), every fault injected and every deploy started. The checkers read
// nothing else, so they can be run on a history recorded earlier, or on a small one written by hand.

/** What a simulated user was doing; each kind maps to one request to the shop. */
export type OpKind =
  | 'login'
  | 'cart-add'
  | 'cart-read'
  | 'profile-write'
  | 'profile-read'
  | 'logout'
  | 'old-cookie';

/** One request and its answer. `status` 0: no HTTP answer (connection refused or reset, or the client timeout). */
export interface Op {
  id: number;
  user: string;
  kind: OpKind;
  /** Client clock (ms since the epoch) when the request was sent and when its answer (or error) arrived. */
  start: number;
  end: number;
  status: number;
  /** The client gave up after its bound (`timeoutMs` of the history). */
  timedOut?: boolean;
  /** The transport error, when `status` is 0. */
  error?: string;
  /** `x-clones-release` / `x-clones-clone` of the answer. */
  release?: string;
  clone?: string;
  /** `error.code` of a JSON error body. */
  code?: string;
  /** The session id (cookie value) the request carried. */
  sid?: string;
  /** The user the answer says is logged in (reads that reveal it); null: the answer says nobody is. */
  authedAs?: string | null;
  /** cart-add: the product added. cart-read: the cart the answer holds. */
  item?: string;
  cart?: string[];
  /** profile-write: the value written (increasing per user). profile-read: the value read (null: none). */
  value?: number | null;
}

export type FaultKind =
  | 'clone-kill'
  | 'agent-kill'
  | 'link-down'
  | 'redis-master-kill'
  | 'replica-pause'
  | 'replica-kill'
  | 'deploy-during-fault'
  | 'balancer-restart';

/** One injected fault: from `start` (injected) to `end` (undone, or its deploy returned). */
export interface Fault {
  kind: FaultKind;
  target: string;
  start: number;
  end: number;
  /** Anything the fault reports (the new Redis master, the deploy's result, ...). */
  note?: string;
}

/** A deploy: `ok` when it returned success; `release` is the release it rolled out. */
export interface Deploy {
  start: number;
  end: number;
  ok: boolean;
  release: string;
}

export interface History {
  seed: number;
  /** The client's bound for one request; an answer later than this (plus `slackMs`) breaks the bound checker. */
  timeoutMs: number;
  /** The release serving when the soak began (treated as a deploy that returned at time 0). */
  initialRelease: string;
  ops: Op[];
  faults: Fault[];
  deploys: Deploy[];
  /**
   * Redis's asynchronous-replication windows: the master was killed at `at`; writes it acknowledged in the
   * `windowMs` before may not have reached the replica that Sentinel promotes (documented by Redis).
   */
  failovers: { at: number; windowMs: number }[];
}
