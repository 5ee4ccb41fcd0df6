import { dirname, relative, resolve } from 'node:path';
// Types only (erased): typescript itself is imported on demand and may be absent.
import type TypeScript from 'typescript';

/** What type-checking a pipeline module found: its diagnostics, or why it was not checked. */
export type TypeCheckResult = { checked: true; diagnostics: string[] } | { checked: false; reason: string };

/** Options that only matter for emitting, dropped: validate emits nothing, and a module may live outside rootDir. */
const EMIT_ONLY = ['outDir', 'rootDir', 'declaration', 'declarationMap', 'sourceMap', 'composite', 'incremental', 'tsBuildInfoFile'];

/**
 * Type-checks a TypeScript pipeline module with the TypeScript compiler (the nearest
 * tsconfig.json's compiler options, else strict NodeNext defaults): the module file's errors, as
 * `tsc --noEmit` reports them for it (every use of what it imports is checked; the imported
 * files' own bodies are not). Diagnostics are `file:line:col - error TSnnnn: message`, relative to
 * the working directory.
 *
 * TypeScript is not a runtime dependency of polku: without it the check is skipped, and the
 * result says how to get it.
 */
export async function typeCheck(file: string, cwd = process.cwd()): Promise<TypeCheckResult> {
  let ts: typeof TypeScript;
  try {
    ts = (await import('typescript')).default;
  } catch {
    return { checked: false, reason: 'typescript is not installed; install it (npm i -D typescript) to type-check the module' };
  }
  file = resolve(cwd, file);
  const configFile = ts.findConfigFile(dirname(file), (f) => ts.sys.fileExists(f));
  let options: TypeScript.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
  };
  if (configFile) {
    const parsed = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    if (parsed) options = parsed.options;
  }
  for (const key of EMIT_ONLY) delete options[key];
  // Style, not correctness: an unused import or parameter does not stop a pipeline from running.
  delete options.noUnusedLocals;
  delete options.noUnusedParameters;
  options.noEmit = true;
  const program = ts.createProgram([file], options);
  // The module file's own diagnostics: checking it checks every use of what it imports, without
  // type-checking whole imported packages (seconds, not tens of seconds, against polku's sources).
  const source = program.getSourceFile(file);
  const all = source
    ? [...program.getOptionsDiagnostics(), ...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    : [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  const diagnostics = all
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (!d.file || d.start === undefined) return `error TS${d.code}: ${message}`;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${relative(cwd, d.file.fileName)}:${line + 1}:${character + 1} - error TS${d.code}: ${message}`;
    });
  return { checked: true, diagnostics };
}
