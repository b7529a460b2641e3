/**
 * Unit test (in process, against a fake cluster — not the real daemon): replays the v1.0
 * session transcript of dog-and-sheep-cli.md §3 for every command this dog implements and
 * compares output and exit codes byte for byte.
 */
import assert from "node:assert/strict";
import { runDogCaptured, startFake, TRANSCRIPT_SECONDS } from "./test_harness.ts";

// Verbatim from the transcript (commands dog does not implement yet are left out). Raw
// timestamps were taken in UTC; they are replaced by the local-time seconds of the same moment.
const TRANSCRIPT = `$ dog cluster info
Cluster status: Waiting for cluster to be formatted

[exit 0]
$ dog cluster format -c 2
using backend plain store
[exit 0]
$ dog cluster info
Cluster status: running, auto-recovery enabled

Cluster created at Sat Nov 21 04:19:04 2026

Epoch Time           Version [Host:Port:V-Nodes,,,]
2026-11-21 04:19:04      1 [127.0.0.1:7000:128, 127.0.0.1:7001:128, 127.0.0.1:7002:128]
[exit 0]
$ dog cluster info -v
Cluster status: running, auto-recovery enabled
Cluster store: plain with 2 redundancy policy
Cluster vnodes strategy: auto
Cluster vnode mode: node
Cluster created at Sat Nov 21 04:19:04 2026

Epoch Time           Version [Host:Port:V-Nodes,,,]
2026-11-21 04:19:04      1 [127.0.0.1:7000:128, 127.0.0.1:7001:128, 127.0.0.1:7002:128]
[exit 0]
$ dog node list
  Id   Host:Port         V-Nodes       Zone
   0   127.0.0.1:7000      \t128          0
   1   127.0.0.1:7001      \t128          1
   2   127.0.0.1:7002      \t128          2
[exit 0]
$ dog node list -r
0 127.0.0.1:7000 128 0
1 127.0.0.1:7001 128 1
2 127.0.0.1:7002 128 2
[exit 0]
$ dog node info
Id\tSize\tUsed\tAvail\tUse%
 0\t73 GB\t0.0 MB\t73 GB\t  0%
 1\t73 GB\t0.0 MB\t73 GB\t  0%
 2\t73 GB\t0.0 MB\t73 GB\t  0%
Total\t220 GB\t0.0 MB\t220 GB\t  0%

Total virtual image size\t0.0 MB
[exit 0]
$ dog node info -r
0 78640807936 0 78640807936 0%
1 78640807936 0 78640807936 0%
2 78640807936 0 78640807936 0%
Total 235922423808 0 235922423808 0% 0
[exit 0]
$ dog vdi create test 100M
[exit 0]
$ dog vdi create test 100M
Failed to create VDI test: VDI exists already
[exit 1]
$ dog vdi create -P small 8M
[exit 0]
$ dog vdi list
  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift
  test         0  100 MB  0.0 MB  0.0 MB 2026-11-21 04:19   7c2b25      2                22
  small        0  8.0 MB  8.0 MB  0.0 MB 2026-11-21 04:19   98998c      2                22
[exit 0]
$ dog vdi list -r
= test 0 104857600 0 0 1795234744 7c2b25 2  22
= small 0 8388608 8388608 0 1795234744 98998c 2  22
[exit 0]
$ dog vdi write test
[exit 0]
$ dog vdi read test 0 6
hello
[exit 0]
$ dog vdi snapshot -s s1 test
[exit 0]
$ dog vdi clone -s s1 test cl
[exit 0]
$ dog vdi list
  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift
c cl           0  100 MB  0.0 MB  4.0 MB 2026-11-21 04:19   4a297a      2                22
s test         1  100 MB  4.0 MB  0.0 MB 2026-11-21 04:19   7c2b25      2            s1  22
  test         0  100 MB  0.0 MB  4.0 MB 2026-11-21 04:19   7c2b26      2                22
  small        0  8.0 MB  8.0 MB  0.0 MB 2026-11-21 04:19   98998c      2                22
[exit 0]
$ dog vdi list -r
c cl 0 104857600 0 4194304 1795234744 4a297a 2  22
s test 1 104857600 4194304 0 1795234744 7c2b25 2 s1 22
= test 0 104857600 0 4194304 1795234744 7c2b26 2  22
= small 0 8388608 8388608 0 1795234744 98998c 2  22
[exit 0]
$ dog vdi object location -i 0 test
Looking for the object 007c2b2500000000 (vid 0x7c2b26 idx 0, 2 copies) with 3 nodes

127.0.0.1:7000 has the object
127.0.0.1:7001 has the object
127.0.0.1:7002 doesn't have the object

According to sheepdog algorithm, the object should be located at:
127.0.0.1:7001 127.0.0.1:7000
[exit 0]
$ dog vdi object map test
Index       VID
00000000   7c2b25
[exit 0]
$ dog vdi setattr test k v
[exit 0]
$ dog vdi getattr test k
v[exit 0]
$ dog vdi getattr test nokey
Attribute 'nokey' not found
[exit 5]
$ dog vdi resize test 200M
[exit 0]
$ dog vdi read nosuch 0 1
Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found
[exit 1]
$ dog vdi delete cl
[exit 0]
$ dog vdi delete test
[exit 0]
$ dog vdi delete -s s1 test
[exit 0]
$ dog vdi list
  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift
  small        0  8.0 MB  8.0 MB  0.0 MB 2026-11-21 04:19   98998c      2                22
[exit 0]
$ dog node log level get
info (6)
[exit 0]
$ dog cluster shutdown
[exit 0]
`;

interface Step {
  argv: string[];
  output: string;
  exit: number;
}

function parseTranscript(text: string): Step[] {
  const steps: Step[] = [];
  const parts = text.split(/^\$ dog /m).slice(1);
  for (const part of parts) {
    const nl = part.indexOf("\n");
    const argv = part.slice(0, nl).split(" ");
    const body = part.slice(nl + 1);
    const m = /\[exit (\d+)\]\n$/.exec(body)!;
    steps.push({
      argv,
      output: body.slice(0, m.index).replaceAll("\\t", "\t").replaceAll(
        "1795234744",
        String(TRANSCRIPT_SECONDS),
      ),
      exit: Number(m[1]),
    });
  }
  return steps;
}

Deno.test("dog replays the v1.0 transcript byte for byte against a fake cluster", async () => {
  const fake = startFake(3);
  try {
    for (const step of parseTranscript(TRANSCRIPT)) {
      const stdin = step.argv.join(" ") === "vdi write test" ? "hello\n" : undefined;
      const run = await runDogCaptured(step.argv, { fake, stdin });
      assert.equal(run.all, step.output, `dog ${step.argv.join(" ")}`);
      assert.equal(run.code, step.exit, `exit code of dog ${step.argv.join(" ")}`);
    }
  } finally {
    await fake.stop();
  }
});
