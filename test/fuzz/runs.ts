/**
 * How many cases each property-based test runs: a slice in `npm test` (CI), the full number in
 * `npm run fuzz` (POLKU_FUZZ_RUNS=100000). A failing case prints fast-check's seed and path, so
 * `fc.assert(..., { seed, path })` replays it exactly.
 */
export function fuzzRuns(slice = 2_000): number {
  const asked = Number(process.env['POLKU_FUZZ_RUNS']);
  return Number.isInteger(asked) && asked > 0 ? asked : slice;
}
