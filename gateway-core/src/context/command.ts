// How the ModemManager source runs mmcli. Injected so tests replay recorded outputs (there is no
// modem on a CI machine); the default runs the real command without a shell.
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** Exit status; a command killed by the timeout has a non-zero one. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Rejects only when the command cannot be run at all (ENOENT: not installed). */
export type CommandRunner = (command: string, args: readonly string[], timeoutMs: number) => Promise<CommandResult>;

export const execRunner: CommandRunner = (command, args, timeoutMs) =>
  new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(err);
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
