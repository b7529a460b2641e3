import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { afterCleanup, ioError, storeError } from "./io_error.ts";

function fsError(code: string): Error {
  return Object.assign(new Error(`${code}: failed`), { code });
}

Deno.test("ioError() maps ENOENT to NO_OBJ, ENOSPC to NO_SPACE and the rest to EIO", () => {
  assert.equal(ioError(fsError("ENOENT"), "read x").result, Res.NO_OBJ);
  assert.equal(ioError(fsError("ENOSPC"), "write x").result, Res.NO_SPACE);
  assert.equal(ioError(fsError("EDQUOT"), "write x").result, Res.NO_SPACE);
  assert.equal(ioError(fsError("EIO"), "write x").result, Res.EIO);
  assert.equal(ioError("odd", "write x").result, Res.EIO);
  const own = new SdError(Res.INVALID_PARMS, "range");
  assert.equal(ioError(own, "write x"), own);
});

Deno.test("storeError() never reports a missing directory as a missing object", () => {
  assert.equal(storeError(fsError("ENOENT"), "list").result, Res.EIO);
  assert.equal(storeError(fsError("ENOSPC"), "list").result, Res.NO_SPACE);
});

Deno.test("afterCleanup() keeps the original error and reports a failed cleanup too", async () => {
  const err = new SdError(Res.NO_SPACE, "create x");
  assert.equal(await afterCleanup(err, () => Promise.resolve()), err);
  const both = await afterCleanup(err, () => Promise.reject(new Error("unlink failed")));
  assert.equal(both.result, Res.NO_SPACE);
  assert.match(both.message, /create x; cleanup failed too: unlink failed/);
});
