/* @jsxRuntime automatic */
/**
 * Mounting the UI on a terminal. Import this module through `loadTui()`
 * (load.ts) only: Ink decides at import time whether it runs "in CI".
 *
 * Every .tsx file starts with an esbuild pragma for the automatic JSX
 * runtime: tsx transforms with the tsconfig of the working directory, and
 * the `purger` bin runs from anywhere.
 */
import { render } from "ink";
import { App } from "./App.js";
import { warmUp } from "./warm-up.js";
import type { TuiStore } from "./tui-store.js";

export interface MountOptions {
  store: TuiStore;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
}

export interface MountedTui {
  /** Publish the last state, draw the last frame, give the terminal back (raw mode off). */
  unmount(): Promise<void>;
}

/** At most this many frames a second (the UI never slows the work: bench/p7-tui.ts). */
export const MAX_FPS = 10;

export function mountTui(options: MountOptions): MountedTui {
  const instance = render(<App store={options.store} />, {
    stdout: options.stdout ?? process.stdout,
    stdin: options.stdin ?? process.stdin,
    stderr: options.stderr ?? process.stderr,
    exitOnCtrlC: false,
    patchConsole: false,
    maxFps: MAX_FPS,
    // Not `incrementalRendering`: in Ink 6.8 it leaves stale lines on a real terminal (tmux shows them).
  });
  const exited = instance.waitUntilExit().catch(() => {});
  // While the command connects to its database: the run's first frames then come warm.
  warmUp(options.stdout?.columns ?? process.stdout.columns ?? 80);
  let unmounting: Promise<void> | null = null;
  return {
    unmount() {
      unmounting ??= (async () => {
        options.store.flush();
        // React commits the store's last update in a microtask: let it land before unmounting.
        await new Promise((resolve) => setImmediate(resolve));
        instance.unmount();
        await exited;
      })();
      return unmounting;
    },
  };
}
