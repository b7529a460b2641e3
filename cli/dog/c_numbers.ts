/**
 * The C number conversions whose exact behaviour shows in v1.0 dog's input and output: strtod(3)
 * prefix parsing, the x86-64 double → uint64/int conversions, and printf's `%.Nf` (glibc rounds the
 * exact binary value, ties to even, where JavaScript's toFixed rounds ties up).
 *
 * @module
 */

/** What strtod(3) consumed: the value and the unparsed rest (`endptr`). */
export interface StrtodResult {
  value: number;
  rest: string;
}

const SPACE = /^[ \t\n\v\f\r]*/;
const DECIMAL = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;
const HEX = /^0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?\d+))?/;
const INF = /^inf(?:inity)?/i;
const NAN = /^nan(?:\([0-9A-Za-z_]*\))?/i;

/**
 * Parses the longest numeric prefix of `text` as glibc's strtod does in the C locale: leading
 * white space, a sign, decimal or hexadecimal floats, inf/infinity and nan. When nothing converts,
 * the value is 0 and `rest` is the whole input.
 */
export function strtod(text: string): StrtodResult {
  let pos = SPACE.exec(text)![0].length;
  let sign = 1;
  if (text[pos] === "+" || text[pos] === "-") {
    if (text[pos] === "-") sign = -1;
    pos++;
  }
  const body = text.slice(pos);
  let m: RegExpExecArray | null;
  if ((m = HEX.exec(body)) !== null) {
    const intDigits = m[1] ?? "";
    const fracDigits = m[2] ?? m[3] ?? "";
    const exp = m[4] === undefined ? 0 : Number(m[4]);
    const mant = BigInt("0x" + (intDigits + fracDigits || "0"));
    const value = scaleByPowerOfTwo(Number(mant), exp - 4 * fracDigits.length);
    return { value: sign * value, rest: body.slice(m[0].length) };
  }
  if (/^0[xX]/.test(body)) {
    // "0x" without hex digits: only the "0" converts.
    return { value: sign * 0, rest: body.slice(1) };
  }
  if ((m = DECIMAL.exec(body)) !== null) {
    return { value: sign * Number(m[0]), rest: body.slice(m[0].length) };
  }
  if ((m = INF.exec(body)) !== null) {
    return { value: sign * Infinity, rest: body.slice(m[0].length) };
  }
  if ((m = NAN.exec(body)) !== null) {
    return { value: NaN, rest: body.slice(m[0].length) };
  }
  return { value: 0, rest: text };
}

function scaleByPowerOfTwo(x: number, exp: number): number {
  // Step so that an intermediate power of two never overflows while the product would not.
  let v = x;
  let e = exp;
  while (e > 1000) {
    v *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    v *= 2 ** -1000;
    e += 1000;
  }
  return v * 2 ** e;
}

const TWO_63 = 2 ** 63;
const U64_INDEFINITE = 1n << 63n;

/**
 * `(uint64_t)d` as gcc compiles it for x86-64 (cvttsd2si with a 2^63 split): truncation toward
 * zero; negative values wrap as two's complement; NaN and values ≤ -2^63 give 2^63; values ≥ 2^64
 * and +inf give 0.
 */
export function doubleToU64(d: number): bigint {
  if (!(d >= TWO_63)) {
    // NaN lands here too (the comparison is unordered).
    return BigInt.asUintN(64, cvttsd2si64(d));
  }
  const low = cvttsd2si64(d - TWO_63);
  return BigInt.asUintN(64, low ^ U64_INDEFINITE);
}

function cvttsd2si64(d: number): bigint {
  if (Number.isNaN(d) || d >= TWO_63 || d < -TWO_63) return -(1n << 63n);
  return BigInt(Math.trunc(d));
}

/** `(int)d` on x86-64 (cvttsd2si, 32-bit): truncation; NaN and out-of-range give INT_MIN. */
export function doubleToInt32(d: number): number {
  if (Number.isNaN(d) || d >= 2 ** 31 || d <= -(2 ** 31) - 1) return -(2 ** 31);
  return Math.trunc(d) | 0;
}

/**
 * printf("%.<digits>f", x) as glibc prints it: the exact binary value rounded half to even.
 */
export function formatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return "nan";
  const negative = x < 0 || Object.is(x, -0);
  if (!Number.isFinite(x)) return negative ? "-inf" : "inf";
  const { mant, exp } = decompose(Math.abs(x));
  let q: bigint;
  const scaled = mant * 10n ** BigInt(digits);
  if (exp >= 0) {
    q = scaled << BigInt(exp);
  } else {
    const den = 1n << BigInt(-exp);
    q = scaled / den;
    const twice = (scaled % den) * 2n;
    if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  }
  let s = q.toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = s.slice(0, s.length - digits) + "." + s.slice(s.length - digits);
  }
  return (negative ? "-" : "") + s;
}

/** A finite non-negative double as mant × 2^exp with an integer mantissa. */
function decompose(x: number): { mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biased === 0) return { mant: fraction, exp: -1074 };
  return { mant: fraction | (1n << 52n), exp: biased - 1075 };
}
