/** The release version, printed by `--version` and reported by /healthz and /ops/health. */
export const VERSION = "0.1.0";
