/**
 * `-c zookeeper:…` option parsing (pure). The driver itself runs against a real ZooKeeper in
 * tests/zookeeper_driver_test.ts and tests/zookeeper_sheep_test.ts.
 */

import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { parseZookeeperOption, ZK_DEFAULT_TIMEOUT_MS } from "./zookeeper.ts";

const parse = (s: string) => {
  const o = parseZookeeperOption(s);
  return { servers: o.servers, base: o.base, timeout: o.sessionTimeoutMs };
};

Deno.test("zookeeper option: servers, cluster id and timeout", () => {
  assert.equal(ZK_DEFAULT_TIMEOUT_MS, 30_000);
  assert.deepEqual(parse("127.0.0.1:2181"), {
    servers: "127.0.0.1:2181",
    base: "/sheepdog",
    timeout: 30_000,
  });
  assert.deepEqual(parse("10.0.0.1:2181,10.0.0.2:2182,zk3.example.com:2183"), {
    servers: "10.0.0.1:2181,10.0.0.2:2182,zk3.example.com:2183",
    base: "/sheepdog",
    timeout: 30_000,
  });
  assert.deepEqual(parse("10.0.0.1:2181,10.0.0.2:2181/prod-1"), {
    servers: "10.0.0.1:2181,10.0.0.2:2181",
    base: "/prod-1",
    timeout: 30_000,
  });
  assert.deepEqual(parse("10.0.0.1:2181/c_2,timeout=5000"), {
    servers: "10.0.0.1:2181",
    base: "/c_2",
    timeout: 5000,
  });
  assert.deepEqual(parse("localhost:2181,timeout=3000"), {
    servers: "localhost:2181",
    base: "/sheepdog",
    timeout: 3000,
  });
  // Leading zeros in a port are normalized.
  assert.equal(parse("h:02181").servers, "h:2181");
});

Deno.test("zookeeper option: every malformed form is refused with the reason", () => {
  const bad: [string, RegExp][] = [
    ["", /no ZooKeeper server given/],
    ["127.0.0.1", /'127.0.0.1' is not HOST:PORT/],
    [":2181", /':2181' is not HOST:PORT/],
    ["h:0", /bad port/],
    ["h:65536", /bad port/],
    ["h:21x", /bad port/],
    ["h_1:2181", /bad host name/],
    ["h:2181,,h2:2181", /'' is not HOST:PORT/],
    ["h:2181/", /cluster id ''/],
    ["h:2181/a/b", /cluster id 'a\/b'/],
    ["h:2181/..", /cluster id '\.\.'/],
    ["h:2181/zookeeper", /cluster id 'zookeeper'/],
    ["h:2181,timeout=", /timeout '' is not a number/],
    ["h:2181,timeout=0", /timeout '0' is not a number/],
    ["h:2181,timeout=12ms", /timeout '12ms' is not a number/],
    ["h:2181,timeout=100,h2:2181", /timeout= must come last/],
  ];
  for (const [text, why] of bad) {
    assert.throws(() => parseZookeeperOption(text), (e) => {
      assert.ok(e instanceof SdError, text);
      assert.equal(e.result, Res.INVALID_PARMS, text);
      assert.match(e.message, /^invalid zookeeper option: /, text);
      assert.match(e.message, why, text);
      return true;
    });
  }
});
