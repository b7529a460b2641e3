/**
 * The node's metadata files (config and epoch logs) behind an interface, so the daemon works on a
 * directory and the simulation on memory.
 *
 * @module
 */

import {
  listEpochs,
  readConfigBytes,
  readEpochBytes,
  removeAllEpochs,
  writeConfigBytes,
  writeEpochBytes,
} from "../store/meta_files.ts";

/** Config and epoch files of one node, as raw bytes. */
export interface MetaFiles {
  readConfig(): Promise<Uint8Array | null>;
  writeConfig(bytes: Uint8Array): Promise<void>;
  listEpochs(): Promise<number[]>;
  readEpoch(epoch: number): Promise<Uint8Array | null>;
  writeEpoch(epoch: number, bytes: Uint8Array): Promise<void>;
  removeAllEpochs(): Promise<void>;
}

/** The metadata files of a store directory. */
export function dirMetaFiles(dir: string): MetaFiles {
  return {
    readConfig: () => readConfigBytes(dir),
    writeConfig: (b) => writeConfigBytes(dir, b),
    listEpochs: () => listEpochs(dir),
    readEpoch: (e) => readEpochBytes(dir, e),
    writeEpoch: (e, b) => writeEpochBytes(dir, e, b),
    removeAllEpochs: () => removeAllEpochs(dir),
  };
}

/** Metadata kept in memory (unit tests, simulation). */
export function memoryMetaFiles(): MetaFiles {
  let config: Uint8Array | null = null;
  const epochs = new Map<number, Uint8Array>();
  return {
    readConfig: () => Promise.resolve(config),
    writeConfig: (b) => {
      config = b.slice();
      return Promise.resolve();
    },
    listEpochs: () => Promise.resolve([...epochs.keys()].sort((a, b) => a - b)),
    readEpoch: (e) => Promise.resolve(epochs.get(e) ?? null),
    writeEpoch: (e, b) => {
      epochs.set(e, b.slice());
      return Promise.resolve();
    },
    removeAllEpochs: () => {
      epochs.clear();
      return Promise.resolve();
    },
  };
}
