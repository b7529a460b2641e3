/**
 * A one-member cluster driver for in-process unit tests of the sheep (a mock: real drivers are
 * tested by the contract suite and the daemon by the real-process tests).
 *
 * @module
 */

import type { ClusterDriver, ClusterHandlers } from "../../cluster/driver.ts";
import type { SdNode } from "../../proto/node.ts";

/** Delivers everything to the single member, in call order. */
export class SoloDriver implements ClusterDriver {
  readonly name = "solo";
  #h: ClusterHandlers | null = null;
  #self: SdNode | null = null;
  #chain: Promise<void> = Promise.resolve();
  #blocked: Promise<void> = Promise.resolve();
  #release: (() => void) | null = null;

  localAddr(): Uint8Array {
    const a = new Uint8Array(16);
    a.set([127, 0, 0, 1], 12);
    return a;
  }
  init(h: ClusterHandlers): Promise<void> {
    this.#h = h;
    return Promise.resolve();
  }
  async join(myself: SdNode, opaque: Uint8Array): Promise<void> {
    this.#self = myself;
    await this.#h!.onAccept(myself, [myself], opaque);
  }
  leave(): Promise<void> {
    return Promise.resolve();
  }
  notify(msg: Uint8Array): Promise<void> {
    this.#chain = this.#chain.then(() => this.#h!.onNotify(this.#self!, msg));
    return Promise.resolve();
  }
  async block(): Promise<void> {
    const prev = this.#blocked;
    let release!: () => void;
    this.#blocked = new Promise<void>((r) => release = r);
    await prev;
    await this.#chain;
    this.#release = release;
  }
  unblock(msg: Uint8Array): Promise<void> {
    this.#chain = this.#chain.then(() => this.#h!.onNotify(this.#self!, msg));
    const r = this.#release;
    this.#release = null;
    r?.();
    return Promise.resolve();
  }
  updateNode(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
