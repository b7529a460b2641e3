import assert from "node:assert/strict";
import { AssertionError } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { RecoveryPhase } from "../proto/stat.ts";
import {
  checkThrottle,
  gatherInit,
  gatherOnComplete,
  gatherOnMembership,
  type Next,
  NO_THROTTLE,
  NodeRecovery,
  parseThrottleOption,
  throttleFromWire,
  throttleToWire,
} from "./progress.ts";

/** Starts and finishes objects until the plan needs something else; returns the started oids. */
function drain(r: NodeRecovery, now = 0): bigint[] {
  const out: bigint[] = [];
  while (r.remaining > 0) {
    const n = r.next(now);
    if (n.kind !== "start") return out;
    out.push(n.oid);
    r.finish(n.epoch, n.oid, "recovered", now);
  }
  return out;
}

function started(n: Next): bigint {
  assert.equal(
    n.kind,
    "start",
    `expected a start, got ${
      JSON.stringify(n, (_, v) => typeof v === "bigint" ? v.toString() : v)
    }`,
  );
  return (n as { oid: bigint }).oid;
}

function planned(epoch: number, oids: bigint[], options = {}): NodeRecovery {
  const r = new NodeRecovery(options);
  r.begin(epoch);
  assert.ok(r.setPlan(epoch, oids).accepted);
  return r;
}

Deno.test("a plan runs in its order, then says notify once, and is done after notified()", () => {
  const r = planned(3, [5n, 1n, 9n]);
  assert.equal(r.phase, "recovering");
  assert.deepEqual(drain(r), [5n, 1n, 9n]);
  assert.deepEqual(r.next(0), { kind: "notify", epoch: 3 });
  assert.equal(r.phase, "notifying");
  assert.deepEqual(r.next(0), { kind: "none" });
  r.notified(2);
  assert.equal(r.phase, "notifying");
  r.notified(3);
  assert.equal(r.phase, "done");
  assert.deepEqual(r.next(0), { kind: "none" });
});

Deno.test("an empty plan goes straight to notifying", () => {
  const r = planned(2, []);
  assert.deepEqual(r.next(0), { kind: "notify", epoch: 2 });
});

Deno.test("a node that never began recovering has nothing to do and makes nobody wait", () => {
  const r = new NodeRecovery();
  assert.equal(r.phase, "idle");
  assert.deepEqual(r.next(0), { kind: "none" });
  assert.equal(r.mustWait(1n, false), false);
  assert.equal(r.state().inRecovery, false);
});

Deno.test("duplicate oids in a plan are recovered once", () => {
  const r = planned(1, [2n, 2n, 3n]);
  assert.deepEqual(drain(r), [2n, 3n]);
  assert.equal(r.state().nrTotal, 2n);
});

Deno.test("a request for a pending object waits and moves it to the front, the latest request first", () => {
  const r = planned(1, [1n, 2n, 3n, 4n]);
  assert.equal(started(r.next(0)), 1n);
  assert.equal(r.mustWait(3n, false), true);
  assert.equal(r.mustWait(4n, false), true);
  r.finish(1, 1n, "recovered", 0);
  assert.deepEqual(drain(r), [4n, 3n, 2n]);
});

Deno.test("requests for objects that exist locally, are not planned, or come once the node is notifying do not wait", () => {
  const r = planned(1, [1n]);
  assert.equal(r.mustWait(1n, true), false);
  assert.equal(r.mustWait(7n, false), false);
  drain(r);
  assert.equal(r.mustWait(1n, false), false);
  r.next(0);
  assert.equal(r.mustWait(1n, false), false);
});

Deno.test("a request for an object in flight waits and is released when it finishes", () => {
  const r = planned(1, [1n, 2n]);
  assert.equal(started(r.next(0)), 1n);
  assert.equal(r.mustWait(1n, false), true);
  assert.ok(r.waited.has(1n));
  assert.deepEqual(r.finish(1, 1n, "recovered", 0), { accepted: true, release: true });
  assert.ok(!r.waited.has(1n));
  assert.equal(started(r.next(0)), 2n);
  assert.deepEqual(r.finish(1, 2n, "recovered", 0), { accepted: true, release: false });
});

Deno.test("while the list is prepared every missing object waits; the plan puts them first and releases the others", () => {
  const r = new NodeRecovery();
  r.begin(4);
  assert.equal(r.phase, "preparing");
  assert.deepEqual(r.state(), {
    inRecovery: true,
    state: RecoveryPhase.PREPARING_LIST,
    nrFinished: 0n,
    nrTotal: 0n,
  });
  assert.equal(r.mustWait(8n, false), true);
  assert.equal(r.mustWait(99n, false), true);
  assert.equal(r.mustWait(5n, true), false);
  assert.deepEqual(r.next(0), { kind: "none" });
  const { accepted, released } = r.setPlan(4, [1n, 2n, 8n]);
  assert.ok(accepted);
  assert.deepEqual(released, [99n]);
  assert.deepEqual(drain(r), [8n, 1n, 2n]);
});

Deno.test("a new epoch drops the running plan, ignores fetches of the old one and keeps the waiters", () => {
  const r = planned(1, [1n, 2n, 3n]);
  assert.equal(started(r.next(0)), 1n);
  assert.equal(r.mustWait(3n, false), true);
  r.begin(2);
  assert.equal(r.phase, "preparing");
  assert.deepEqual(r.finish(1, 1n, "recovered", 0), { accepted: false, release: false });
  assert.equal(r.isPending(2n), false);
  r.setPlan(2, [2n, 3n]);
  assert.deepEqual(drain(r), [3n, 2n]);
});

Deno.test("a new epoch while preparing keeps the waiters, and a plan for an older epoch is ignored", () => {
  const r = new NodeRecovery();
  r.begin(1);
  r.mustWait(6n, false);
  r.begin(2);
  assert.deepEqual(r.setPlan(1, [6n]), { accepted: false, released: [] });
  assert.equal(r.phase, "preparing");
  assert.ok(r.setPlan(2, [5n, 6n]).accepted);
  assert.deepEqual(r.setPlan(2, [7n]), { accepted: false, released: [] });
  assert.deepEqual(drain(r), [6n, 5n]);
});

Deno.test("epochs only move forward", () => {
  const r = new NodeRecovery();
  r.begin(3);
  assert.throws(() => r.begin(3), AssertionError);
  assert.throws(() => r.begin(2), AssertionError);
});

Deno.test("throttling starts at most max objects per interval and says when to come back", () => {
  const r = planned(1, [1n, 2n, 3n, 4n, 5n], {
    maxInFlight: 10,
    throttle: { max: 2, intervalMs: 100 },
  });
  assert.equal(started(r.next(1000)), 1n);
  assert.equal(started(r.next(1010)), 2n);
  assert.deepEqual(r.next(1020), { kind: "wait", until: 1100 });
  assert.deepEqual(r.next(1099), { kind: "wait", until: 1100 });
  assert.equal(started(r.next(1100)), 3n);
  assert.equal(started(r.next(1150)), 4n);
  assert.deepEqual(r.next(1199), { kind: "wait", until: 1200 });
  // The window opens at the first start after the last one closed.
  assert.equal(started(r.next(5000)), 5n);
});

Deno.test("requested objects skip the throttle but count in its window", () => {
  const r = planned(1, [1n, 2n, 3n], { maxInFlight: 10, throttle: { max: 1, intervalMs: 50 } });
  assert.equal(started(r.next(0)), 1n);
  assert.deepEqual(r.next(1), { kind: "wait", until: 50 });
  r.mustWait(3n, false);
  assert.equal(started(r.next(1)), 3n);
  assert.deepEqual(r.next(2), { kind: "wait", until: 50 });
  assert.equal(started(r.next(50)), 2n);
});

Deno.test("set-throttle takes effect at the next start, and no throttle means no waiting", () => {
  const r = planned(1, [1n, 2n, 3n, 4n], { maxInFlight: 10 });
  assert.equal(started(r.next(0)), 1n);
  r.setThrottle({ max: 1, intervalMs: 10 });
  assert.deepEqual(r.throttle, { max: 1, intervalMs: 10 });
  assert.equal(started(r.next(0)), 2n);
  assert.deepEqual(r.next(0), { kind: "wait", until: 10 });
  r.setThrottle(NO_THROTTLE);
  assert.equal(started(r.next(0)), 3n);
  assert.equal(started(r.next(0)), 4n);
});

Deno.test("maxInFlight bounds the objects started and not yet finished", () => {
  const r = planned(1, [1n, 2n, 3n], { maxInFlight: 2 });
  assert.equal(started(r.next(0)), 1n);
  assert.equal(started(r.next(0)), 2n);
  assert.deepEqual(r.next(0), { kind: "none" });
  assert.deepEqual([...r.inFlight], [1n, 2n]);
  r.finish(1, 2n, "recovered", 0);
  assert.equal(started(r.next(0)), 3n);
});

Deno.test("busy with client I/O, objects nobody waits for start only below busyMaxInFlight", () => {
  const r = planned(1, [1n, 2n, 3n, 4n, 5n], { maxInFlight: 3, busyMaxInFlight: 1, busyMs: 100 });
  r.clientIo(0);
  assert.equal(started(r.next(0)), 1n);
  assert.deepEqual(r.next(10), { kind: "none" }, "busy: one at a time");
  assert.equal(r.mustWait(4n, false), true);
  assert.equal(started(r.next(10)), 4n, "a waited-for object is not held back");
  r.finish(1, 1n, "recovered", 20);
  assert.deepEqual(r.next(20), { kind: "none" }, "4 in flight, still busy");
  assert.equal(started(r.next(100)), 2n, "no client op for busyMs: maxInFlight again");
  assert.equal(started(r.next(100)), 3n);
  assert.deepEqual(r.next(100), { kind: "none" });
  assert.throws(() => new NodeRecovery({ maxInFlight: 2, busyMaxInFlight: 3 }), AssertionError);
});

Deno.test("busy with latency-bound client I/O, recovery pauses after each object for as long as it took", () => {
  const r = planned(1, [1n, 2n, 3n, 4n, 5n], {
    maxInFlight: 4,
    busyMaxInFlight: 2,
    busyMs: 1000,
    busyPauseRatio: 1,
  });
  r.clientIo(0);
  assert.equal(started(r.next(0)), 1n);
  assert.equal(started(r.next(10)), 2n);
  r.finish(1, 1n, "recovered", 40);
  assert.deepEqual(r.next(40), { kind: "wait", until: 80 }, "1 took 40 ms: pause until 80");
  r.finish(1, 2n, "recovered", 50);
  assert.deepEqual(r.next(50), { kind: "wait", until: 90 }, "2 took 40 ms too: until 90");
  assert.equal(r.mustWait(5n, false), true);
  assert.equal(started(r.next(60)), 5n, "a waited-for object is not paused");
  r.finish(1, 5n, "recovered", 300);
  assert.deepEqual(r.next(300).kind, "start", "nor does it pause the others");
  assert.equal(started(r.next(300)), 4n);
});

Deno.test("recovery does not pause for creates only, nor once the client is gone", () => {
  const r = planned(1, [1n, 2n, 3n], { maxInFlight: 4, busyMaxInFlight: 1, busyMs: 100 });
  r.clientIo(0, true);
  assert.equal(started(r.next(0)), 1n);
  assert.deepEqual(r.next(0), { kind: "none" }, "busy with creates: the in-flight bound only");
  r.finish(1, 1n, "recovered", 50);
  assert.equal(started(r.next(50)), 2n, "no pause after it");
  r.clientIo(60);
  r.finish(1, 2n, "recovered", 90);
  assert.deepEqual(r.next(90), { kind: "wait", until: 130 }, "a write: pause as long as 2 took");
  assert.equal(started(r.next(130)), 3n);
  const idle = planned(1, [1n, 2n], { maxInFlight: 1, busyMs: 100 });
  idle.clientIo(0);
  assert.equal(started(idle.next(0)), 1n);
  idle.finish(1, 1n, "recovered", 200);
  assert.equal(started(idle.next(200)), 2n, "no client op for busyMs: no pause");
  assert.throws(() => new NodeRecovery({ busyPauseRatio: -1 }), AssertionError);
});

Deno.test("a transient failure retries the object after the delay, once the other objects are started", () => {
  const r = planned(1, [1n, 2n], { retryDelayMs: 30 });
  assert.equal(started(r.next(0)), 1n);
  assert.deepEqual(r.finish(1, 1n, "retry", 10), { accepted: true, release: false });
  assert.equal(r.isPending(1n), true);
  assert.equal(started(r.next(10)), 2n);
  r.finish(1, 2n, "recovered", 11);
  assert.deepEqual(r.next(11), { kind: "wait", until: 40 });
  assert.equal(started(r.next(40)), 1n);
  r.finish(1, 1n, "recovered", 41);
  assert.deepEqual(r.next(41), { kind: "notify", epoch: 1 });
});

Deno.test("a waited-for object that failed is retried as soon as it is due, before queued ones and the throttle", () => {
  const r = planned(1, [1n, 2n, 3n], { retryDelayMs: 5, throttle: { max: 1, intervalMs: 1000 } });
  r.mustWait(1n, false);
  assert.equal(started(r.next(0)), 1n);
  r.finish(1, 1n, "retry", 0);
  assert.deepEqual(r.next(1), { kind: "wait", until: 5 });
  assert.equal(started(r.next(5)), 1n);
  r.finish(1, 1n, "recovered", 6);
  assert.deepEqual(r.next(6), { kind: "wait", until: 1000 });
});

Deno.test("a new request for a retry-delayed object makes it due at once", () => {
  const r = planned(1, [1n], { retryDelayMs: 1000 });
  assert.equal(started(r.next(0)), 1n);
  r.finish(1, 1n, "retry", 0);
  assert.deepEqual(r.next(1), { kind: "wait", until: 1000 });
  assert.equal(r.mustWait(1n, false), true);
  assert.equal(started(r.next(2)), 1n);
});

Deno.test("an object created locally is finished and releases its waiters; one in flight finishes with its fetch", () => {
  const r = planned(1, [1n, 2n, 3n]);
  r.mustWait(2n, false);
  assert.equal(r.createdLocally(2n), true);
  assert.equal(r.isPending(2n), false);
  assert.equal(started(r.next(0)), 1n);
  r.mustWait(1n, false);
  assert.equal(r.createdLocally(1n), false);
  assert.deepEqual(r.finish(1, 1n, "recovered", 0), { accepted: true, release: true });
  assert.equal(r.createdLocally(42n), false);
  assert.deepEqual(drain(r), [3n]);
  assert.equal(r.state().nrFinished, 3n);
});

Deno.test("absent objects count as finished and are listed", () => {
  const r = planned(1, [1n, 2n]);
  assert.equal(started(r.next(0)), 1n);
  r.finish(1, 1n, "absent", 0);
  drain(r);
  assert.deepEqual(r.absent, [1n]);
  assert.deepEqual(r.next(0), { kind: "notify", epoch: 1 });
});

Deno.test("state() reports the phase and the finished and total counts as STAT_RECOVERY does", () => {
  const r = planned(2, [1n, 2n, 3n]);
  r.finish(2, started(r.next(0)), "recovered", 0);
  assert.deepEqual(r.state(), {
    inRecovery: true,
    state: RecoveryPhase.RECOVERING_OBJECTS,
    nrFinished: 1n,
    nrTotal: 3n,
  });
  assert.equal(r.remaining, 2);
  drain(r);
  r.next(0);
  assert.equal(r.state().state, RecoveryPhase.NOTIFYING_COMPLETION);
  assert.equal(r.state().inRecovery, true);
  r.notified(2);
  assert.equal(r.state().inRecovery, false);
});

Deno.test("sheep -R takes max=N,interval=MS in any order and refuses anything else", () => {
  assert.deepEqual(parseThrottleOption("max=4,interval=250"), { max: 4, intervalMs: 250 });
  assert.deepEqual(parseThrottleOption("interval=1000,max=1"), { max: 1, intervalMs: 1000 });
  for (
    const bad of [
      "",
      "max=4",
      "interval=5",
      "max=0,interval=5",
      "max=4,interval=0",
      "max=-1,interval=5",
      "max=4,interval=5,max=4",
      "max=4,speed=5",
      "max=x,interval=5",
      "max=4;interval=5",
    ]
  ) {
    assert.throws(
      () => parseThrottleOption(bad),
      (e: unknown) => e instanceof SdError && e.result === Res.INVALID_PARMS,
      bad,
    );
  }
});

Deno.test("a throttle round-trips through its wire form, and throttling off means none", () => {
  const t = { max: 3, intervalMs: 500 };
  assert.deepEqual(throttleToWire(t), {
    maxExecCount: 3,
    queueWorkInterval: 500n,
    throttling: true,
  });
  assert.deepEqual(throttleFromWire(throttleToWire(t)), t);
  assert.deepEqual(throttleToWire(NO_THROTTLE).throttling, false);
  assert.deepEqual(
    throttleFromWire({ maxExecCount: 9, queueWorkInterval: 9n, throttling: false }),
    NO_THROTTLE,
  );
  assert.throws(
    () => throttleFromWire({ maxExecCount: 0, queueWorkInterval: 9n, throttling: true }),
    SdError,
  );
  assert.throws(() => checkThrottle({ max: 1.5, intervalMs: 9 }), SdError);
  assert.throws(() => checkThrottle({ max: 1, intervalMs: 0 }), SdError);
});

const M = ["a:1", "b:1", "c:1"];

Deno.test("stale copies are purged once, when every member of the current epoch has reported its completion", () => {
  let s = gatherInit(5, M, 4);
  let r = gatherOnComplete(s, 5, "a:1");
  assert.equal(r.purge, false);
  r = gatherOnComplete(r.state, 5, "b:1");
  assert.equal(r.purge, false);
  r = gatherOnComplete(r.state, 5, "c:1");
  assert.equal(r.purge, true);
  assert.equal(r.state.lastGathered, 5);
  s = r.state;
  r = gatherOnComplete(s, 5, "c:1");
  assert.equal(r.purge, false);
});

Deno.test("a completion report for an older epoch never purges", () => {
  let s = gatherInit(5, M, 4);
  s = gatherOnComplete(s, 5, "a:1").state;
  s = gatherOnComplete(s, 5, "b:1").state;
  s = gatherOnMembership(s, 6, M);
  const r = gatherOnComplete(s, 5, "c:1");
  assert.equal(r.purge, false);
  assert.deepEqual(r.state.reported, []);
  assert.equal(r.state.lastGathered, 4);
});

Deno.test("a membership change needs every member again, and reports from non-members and repeats are ignored", () => {
  let s = gatherInit(1, ["a:1", "b:1"], 1);
  s = gatherOnComplete(s, 2, "a:1").state; // a future epoch: ignored
  s = gatherOnMembership(s, 2, ["a:1", "b:1", "g:1"]);
  s = gatherOnComplete(s, 2, "a:1").state;
  s = gatherOnComplete(s, 2, "a:1").state;
  s = gatherOnComplete(s, 2, "z:9").state;
  assert.deepEqual(s.reported, ["a:1"]);
  let r = gatherOnComplete(s, 2, "b:1");
  assert.equal(r.purge, false, "the gateway g has not reported");
  r = gatherOnComplete(r.state, 2, "g:1");
  assert.equal(r.purge, true);
});

Deno.test("the same epoch again keeps the reports of the members still there", () => {
  let s = gatherInit(3, M);
  s = gatherOnComplete(s, 3, "a:1").state;
  s = gatherOnComplete(s, 3, "b:1").state;
  s = gatherOnMembership(s, 3, ["a:1", "c:1"]);
  assert.deepEqual(s.reported, ["a:1"]);
  assert.equal(gatherOnComplete(s, 3, "c:1").purge, true);
});

Deno.test("the cluster epoch never goes back", () => {
  const s = gatherInit(3, M);
  assert.throws(() => gatherOnMembership(s, 2, M), AssertionError);
  assert.throws(() => gatherInit(2, M, 3), AssertionError);
});

Deno.test("with urgentOnly (recovery disabled) only requested objects start; the rest waits for enable", () => {
  const r = new NodeRecovery({ maxInFlight: 4, retryDelayMs: 10 });
  r.begin(3);
  r.setPlan(3, [1n, 2n, 3n]);
  assert.deepEqual(r.next(0, { urgentOnly: true }), { kind: "none" });
  assert.equal(r.mustWait(2n, false), true);
  assert.equal(started(r.next(0, { urgentOnly: true })), 2n);
  r.finish(3, 2n, "retry", 0);
  assert.equal(r.mustWait(2n, false), true);
  assert.equal(started(r.next(0, { urgentOnly: true })), 2n);
  r.finish(3, 2n, "retry", 0);
  assert.deepEqual(r.next(5, { urgentOnly: true }), { kind: "wait", until: 10 });
  assert.equal(started(r.next(10, { urgentOnly: true })), 2n);
  r.finish(3, 2n, "recovered", 10);
  assert.deepEqual(r.next(11, { urgentOnly: true }), { kind: "none" });
  assert.deepEqual(drain(r, 12), [1n, 3n]);
  assert.deepEqual(r.next(12), { kind: "notify", epoch: 3 });
});

Deno.test("NodeRecovery.refuse() starts nothing, releases waiters and never notifies", () => {
  const r = new NodeRecovery({ maxInFlight: 2 });
  r.begin(3);
  assert.equal(r.mustWait(7n, false), true, "preparing: a request waits");
  assert.deepEqual(r.refuse(2), { accepted: false, released: [] }, "another epoch");
  assert.deepEqual(r.refuse(3), { accepted: true, released: [7n] });
  assert.equal(r.phase, "refused");
  assert.equal(r.mustWait(7n, false), false);
  assert.deepEqual(r.next(0), { kind: "none" });
  assert.equal(r.state().inRecovery, false);
  assert.deepEqual(r.setPlan(3, [7n]), { accepted: false, released: [] });
  r.begin(4);
  assert.equal(r.phase, "preparing", "the next epoch decides again");
});

Deno.test("NodeRecovery: a noSpace outcome releases waiters, is retried after its delay", () => {
  const r = new NodeRecovery({ maxInFlight: 1, retryDelayMs: 10 });
  r.begin(1);
  r.setPlan(1, [5n]);
  assert.equal(r.mustWait(5n, false), true);
  assert.deepEqual(r.next(0), { kind: "start", epoch: 1, oid: 5n });
  assert.deepEqual(r.finish(1, 5n, "noSpace", 0, 5000), { accepted: true, release: true });
  assert.equal(r.lacksSpace(5n), true);
  assert.equal(r.mustWait(5n, false), false, "nobody waits for an object that has no room");
  assert.deepEqual(r.next(100), { kind: "wait", until: 5000 });
  assert.deepEqual(r.next(5000), { kind: "start", epoch: 1, oid: 5n });
  r.finish(1, 5n, "recovered", 5001);
  assert.equal(r.lacksSpace(5n), false);
  assert.deepEqual(r.next(5001), { kind: "notify", epoch: 1 });
});
