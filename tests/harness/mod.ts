/**
 * Helpers for integration tests with real processes: sheep daemons, dog, tgtd, one-shot tools with
 * deadlines, free ports and scratch directories. Every helper is bounded by a deadline and stops
 * what it starts by its own handle (pid), never by name.
 *
 * @module
 */

export { repoRoot, sheepdogCommand } from "./paths.ts";
export {
  canBind,
  freePort,
  freePortBelow,
  freePortInRange,
  isListening,
  VECTOR_PORTS,
} from "./ports.ts";
export {
  liveManagedPids,
  ManagedProcess,
  run,
  runOk,
  type RunOptions,
  type RunResult,
  sleep,
  spawnManaged,
  type SpawnOptions,
  waitUntil,
  withDeadline,
} from "./process.ts";
export { type TempDir, tempDir, testTmpBase } from "./tempdir.ts";
export {
  type Cluster,
  CLUSTER_ENV,
  defaultClusterTemplate,
  type DogOptions,
  type DogResult,
  expandClusterSpec,
  LOCAL_TEMPLATE,
  runDog,
  runDogOk,
  sheepArgs,
  SheepProcess,
  startCluster,
  type StartClusterOptions,
  startSheep,
  type StartSheepOptions,
} from "./sheep.ts";
export {
  sheepdogBackingStore,
  startTgt,
  startTgtd,
  Tgtd,
  type TgtdOptions,
  type TgtExport,
  type TgtOptions,
} from "./tgt.ts";
