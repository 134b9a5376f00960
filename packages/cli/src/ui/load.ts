/**
 * Loading Ink so that the terminal decides, not the `CI` variable (see the README, "The terminal UI").
 *
 * Ink reads `CI` / `CONTINUOUS_INTEGRATION` once, when its module is first
 * evaluated (the `is-in-ci` package): set, it draws only the last frame,
 * ignores resizes and never erases. So both are hidden from the environment
 * while the UI modules are imported, and put back right after. `NO_COLOR`
 * (no-color.org) is not read by Ink's chalk: it becomes `FORCE_COLOR=0` for
 * the same moment, which chalk reads at the same time. And unless told
 * otherwise (`NODE_ENV`), React loads its production build: the development
 * build checks every render and costs the work its CPU.
 *
 * Nothing else imports Ink: commands without a terminal never load it.
 */
const HIDDEN = ["CI", "CONTINUOUS_INTEGRATION"] as const;

export type TuiModule = typeof import("./tui.js");

let loaded: Promise<TuiModule> | null = null;

export function loadTui(env: NodeJS.ProcessEnv = process.env): Promise<TuiModule> {
  loaded ??= importWithout(env);
  return loaded;
}

async function importWithout(env: NodeJS.ProcessEnv): Promise<TuiModule> {
  const saved = new Map<string, string | undefined>();
  for (const name of HIDDEN) {
    saved.set(name, env[name]);
    delete env[name];
  }
  if (env.NO_COLOR && env.FORCE_COLOR === undefined) {
    saved.set("FORCE_COLOR", undefined);
    env.FORCE_COLOR = "0";
  }
  if (env.NODE_ENV === undefined) {
    saved.set("NODE_ENV", undefined);
    env.NODE_ENV = "production";
  }
  try {
    return await import("./tui.js");
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
  }
}

/** Whether a command draws the UI: stdout is a terminal and neither `--no-tui` nor `--json` was given. */
export function wantsTui(flags: { tui?: boolean; json?: boolean }, isTTY: boolean): boolean {
  return isTTY && flags.tui !== false && flags.json !== true;
}
