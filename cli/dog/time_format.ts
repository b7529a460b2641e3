/**
 * Local-time renderings that v1.0 dog produces with strftime(3) and ctime(3). JavaScript's Date
 * getters use the process time zone (TZ), as localtime_r does.
 *
 * @module
 */

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** A Date for a count of Unix seconds. */
export function dateOfSeconds(seconds: number | bigint): Date {
  return new Date(Number(seconds) * 1000);
}

/** strftime "%Y-%m-%d %H:%M" in local time (vdi list). */
export function formatMinute(d: Date): string {
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${
    two(d.getMinutes())
  }`;
}

/** strftime "%Y-%m-%d %H:%M:%S" in local time (cluster info epochs). */
export function formatSecond(d: Date): string {
  return `${formatMinute(d)}:${two(d.getSeconds())}`;
}

/** ctime(3) without its trailing newline: "Sat Nov 21 04:19:04 2026", day padded with a space. */
export function formatCtime(d: Date): string {
  const day = String(d.getDate()).padStart(2, " ");
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${day} ${two(d.getHours())}:${
    two(d.getMinutes())
  }:${two(d.getSeconds())} ${d.getFullYear()}`;
}

/** The seconds part of a Sheepdog timestamp (seconds << 32 | nanoseconds). */
export function sdTimeSeconds(t: bigint): bigint {
  return BigInt.asUintN(64, t) >> 32n;
}

/** A Sheepdog timestamp for a Date: seconds in the high 32 bits, nanoseconds in the low ones. */
export function sdTimeOf(d: Date): bigint {
  const ms = d.getTime();
  const sec = Math.floor(ms / 1000);
  const usec = (ms - sec * 1000) * 1000;
  return (BigInt(sec) << 32n) | BigInt(usec * 1000);
}
