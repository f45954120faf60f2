import { parse as parseToml } from "smol-toml";

/**
 * How a Python app is built and started (issue 14), as Heroku's Python buildpack and Railway's
 * Railpack decide it (https://devcenter.heroku.com/articles/python-support,
 * https://railpack.com/languages/python): dependencies from requirements.txt, pyproject.toml or
 * Pipfile.lock, installed by pip into a virtualenv in the release's own checkout (.venv: never
 * shared with another release); the start from a Procfile (build-plan.ts, which wins), else
 * Django's WSGI module, else a WSGI or ASGI app in app.py, main.py or wsgi.py served by the
 * server the app depends on, else `python app.py`. Pure: the runtime gathers the facts and
 * provides the interpreter (toolchains/python.ts).
 */

/** What Python detection reads of the app's root (build-plan.ts's RepoFacts). */
export type PythonFacts = {
  files: ReadonlySet<string>;
  requirementsTxt: string | null;
  pyprojectToml: string | null;
  pipfileLock: string | null;
  /** `.python-version` (pyenv) and `runtime.txt` (Heroku's `python-3.11.9`). */
  pythonVersionFile: string | null;
  runtimeTxt: string | null;
  /** The entry files detection reads for an app object: app.py, main.py, wsgi.py, asgi.py, manage.py, when present. */
  sources: Readonly<Record<string, string>>;
};

/** Where the Python version came from, as the build log names it. */
export type PythonSource = ".python-version" | "runtime.txt" | "the service's pythonVersion";
/** A version an app asks for: `3`, `3.11` or `3.11.9`, matched against the interpreters of the engine's host. */
export type PythonRequest = { source: PythonSource; spec: string; parts: number[] };

/** The interpreter the runtime substitutes in a step's argv (toolchains/python.ts chooses it). */
export const PYTHON = "python3";
/** A file the engine writes into the app directory before the install (Pipfile.lock's pinned packages). */
export type GeneratedFile = { path: string; text: string };

type Command = { argv: string[]; display: string };
export type PythonPlan = {
  installs: Command[];
  /** null: nothing detected to start (a Procfile or start command must say). */
  start: Command | null;
  /** Each decision with its reason, for the build log and `slipway service plan`. */
  decisions: string[];
  /** What was detected, as users name it: "Django", "WSGI app (Flask)", "Python". */
  framework: string;
  version: PythonRequest | null;
  generated: GeneratedFile[];
};

type Result<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Whether these facts are a Python app's (a dependency file, or only a Python entry point). */
export function isPythonApp(facts: Pick<PythonFacts, "files" | "requirementsTxt" | "pyprojectToml" | "pipfileLock">): boolean {
  return (
    facts.requirementsTxt !== null ||
    facts.pyprojectToml !== null ||
    facts.pipfileLock !== null ||
    ["app.py", "main.py", "wsgi.py", "manage.py"].some((file) => facts.files.has(file))
  );
}

/** The version `spec` names (`3.11`, `3.11.9`, `python-3.11.9`, `cpython-3.12`); an error naming it otherwise. */
export function parsePythonSpec(spec: string, source: PythonSource): Result<PythonRequest> {
  const text = spec.trim();
  const match = /^(?:c?python-?)?(3(?:\.\d+){0,2})$/i.exec(text);
  if (!match) return { ok: false, reason: `${source} "${text}" is not a Python version such as 3.12 or 3.11.9` };
  return { ok: true, value: { source, spec: text, parts: match[1]!.split(".").map(Number) } };
}

/** The first line of a version file that says something (pyenv allows # comments). */
function firstLine(text: string): string | null {
  return (
    text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .find((line) => line !== "" && !line.startsWith("#")) ?? null
  );
}

export function pythonRequest(facts: Pick<PythonFacts, "pythonVersionFile" | "runtimeTxt">, override?: string): Result<PythonRequest | null> {
  if (override) return parsePythonSpec(override, "the service's pythonVersion");
  const files: Array<[PythonSource, string | null]> = [
    [".python-version", facts.pythonVersionFile],
    ["runtime.txt", facts.runtimeTxt],
  ];
  for (const [source, text] of files) {
    const line = text === null ? null : firstLine(text);
    if (line !== null) return parsePythonSpec(line, source);
  }
  return { ok: true, value: null };
}

/** A distribution name as PEP 503 normalizes it (`Flask_SQLAlchemy` → `flask-sqlalchemy`). */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** The distribution a PEP 508 requirement names (`gunicorn[gevent]>=20; python_version>"3"` → gunicorn), null for options and URLs. */
export function requirementName(line: string): string | null {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(line.trim());
  return match ? normalizeName(match[1]!) : null;
}

function requirementsLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, "").trim())
    .filter((line) => line !== "");
}

type PipfileEntry = { version?: unknown; hashes?: unknown; markers?: unknown; extras?: unknown };

/**
 * Pipfile.lock's `default` section as a requirements file pip installs with `--require-hashes`
 * (pipenv itself is not provided): every package pinned `==` with its hashes, as `pipenv
 * requirements --hash` would write it. A package from git, a path or a URL has no such pin and is refused.
 */
export function pipfileRequirements(text: string): Result<{ text: string; names: string[] }> {
  let lock: { default?: Record<string, PipfileEntry> };
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch (error) {
    return { ok: false, reason: `Pipfile.lock is not valid JSON: ${(error as Error).message}` };
  }
  const lines: string[] = [];
  const names: string[] = [];
  for (const [name, entry] of Object.entries(lock.default ?? {})) {
    const { version, hashes, markers, extras } = entry;
    if (typeof version !== "string" || !version.startsWith("==") || !Array.isArray(hashes) || hashes.length === 0)
      return {
        ok: false,
        reason: `Pipfile.lock pins ${name} with no ==version and hashes (from git, a path or a URL?): pip cannot install it with --require-hashes`,
      };
    if (!/^[A-Za-z0-9._-]+$/.test(name)) return { ok: false, reason: `Pipfile.lock names a package "${name}" that is not a distribution name` };
    const extra = Array.isArray(extras) && extras.length > 0 ? `[${extras.map(String).join(",")}]` : "";
    const marker = typeof markers === "string" && markers.trim() !== "" ? `; ${markers}` : "";
    lines.push(`${name}${extra}${version}${marker} ${hashes.map((hash) => `--hash=${String(hash)}`).join(" ")}`);
    names.push(normalizeName(name));
  }
  return { ok: true, value: { text: `# Generated by the engine from Pipfile.lock's default section.\n${lines.join("\n")}\n`, names } };
}

/** The file the engine writes Pipfile.lock's requirements to, beside it. */
export const PIPFILE_REQUIREMENTS = ".slipway-pipfile-requirements.txt";

const PIP = [".venv/bin/pip", "install", "--disable-pip-version-check", "--no-input"];

function command(...argv: string[]): Command {
  return { argv, display: argv.join(" ") };
}

/** The install: the dependencies and the names they declare (for the server choice), from the first dependency file found. */
function dependencies(facts: PythonFacts): Result<{ installs: Command[]; names: Set<string>; decision: string; generated: GeneratedFile[] }> {
  const venv = command(PYTHON, "-m", "venv", ".venv");
  if (facts.requirementsTxt !== null) {
    const lines = requirementsLines(facts.requirementsTxt);
    const names = new Set(lines.map(requirementName).filter((name): name is string => name !== null));
    // Without requirements, skip pip in the venv too: ensurepip alone takes seconds.
    if (lines.length === 0)
      return {
        ok: true,
        value: {
          installs: [command(PYTHON, "-m", "venv", "--without-pip", ".venv")],
          names,
          decision: "Dependencies: none (requirements.txt lists none)",
          generated: [],
        },
      };
    return {
      ok: true,
      value: {
        installs: [venv, command(...PIP, "-r", "requirements.txt")],
        names,
        decision: "Dependencies: pip install -r requirements.txt (from requirements.txt)",
        generated: [],
      },
    };
  }
  if (facts.pipfileLock !== null) {
    const pinned = pipfileRequirements(facts.pipfileLock);
    if (!pinned.ok) return pinned;
    return {
      ok: true,
      value: {
        installs: [venv, command(...PIP, "--require-hashes", "--no-deps", "-r", PIPFILE_REQUIREMENTS)],
        names: new Set(pinned.value.names),
        decision: `Dependencies: Pipfile.lock's default packages, pinned with their hashes (pip --require-hashes; pipenv is not provided)`,
        generated: [{ path: PIPFILE_REQUIREMENTS, text: pinned.value.text }],
      },
    };
  }
  if (facts.pyprojectToml !== null) {
    let pyproject: { "build-system"?: unknown; project?: { dependencies?: unknown } };
    try {
      pyproject = parseToml(facts.pyprojectToml) as typeof pyproject;
    } catch (error) {
      return { ok: false, reason: `pyproject.toml is not valid TOML: ${(error as Error).message.split("\n")[0]}` };
    }
    const declared = pyproject.project?.dependencies;
    if (declared !== undefined && (!Array.isArray(declared) || declared.some((entry) => typeof entry !== "string")))
      return { ok: false, reason: "[project].dependencies in pyproject.toml must be a list of requirement strings" };
    const requirements = (declared ?? []) as string[];
    const names = new Set(requirements.map(requirementName).filter((name): name is string => name !== null));
    // A project with a build backend is installed as itself (PEP 517), its dependencies with it.
    if (pyproject["build-system"] !== undefined)
      return {
        ok: true,
        value: { installs: [venv, command(...PIP, ".")], names, decision: "Dependencies: pip install . (pyproject.toml has a [build-system])", generated: [] },
      };
    if (requirements.length > 0)
      return {
        ok: true,
        value: {
          installs: [venv, command(...PIP, ...requirements)],
          names,
          decision: "Dependencies: [project].dependencies of pyproject.toml (it has no [build-system] to install the project with)",
          generated: [],
        },
      };
  }
  return {
    ok: true,
    value: {
      installs: [command(PYTHON, "-m", "venv", "--without-pip", ".venv")],
      names: new Set(),
      decision: "Dependencies: none (no requirements.txt, Pipfile.lock or pyproject.toml dependencies)",
      generated: [],
    },
  };
}

/** A module-level assignment of a WSGI/ASGI app object, read statically (never imported): `app = Flask(__name__)`. */
function appVariable(source: string): { name: string; factory: string } | null {
  for (const name of ["app", "application"]) {
    const match = new RegExp(`^${name}\\s*(?::[^=]+)?=\\s*([A-Za-z_][\\w.]*)\\s*\\(`, "m").exec(source);
    if (match) return { name, factory: match[1]!.split(".").at(-1)! };
  }
  return null;
}

const ASGI_FACTORIES = new Set(["FastAPI", "Starlette", "Quart", "Litestar"]);

/** Django's settings module, from manage.py's `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")`. */
export function djangoProject(managePy: string): string | null {
  const match = /DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w]*)\.[\w.]+["']/.exec(managePy);
  return match?.[1] ?? null;
}

/** A start through the shell, for $PORT; every word it holds is a checked module path or a constant. */
function server(display: string): Command {
  return { argv: ["/bin/sh", "-c", `exec ${display}`], display };
}

function detectStart(facts: PythonFacts, names: Set<string>): Result<{ start: Command | null; decision: string; framework: string }> {
  const gunicorn = names.has("gunicorn");
  const uvicorn = names.has("uvicorn");
  const managePy = facts.sources["manage.py"];
  if (managePy !== undefined) {
    const project = djangoProject(managePy);
    if (project) {
      if (gunicorn)
        return {
          ok: true,
          value: {
            start: server(`gunicorn --bind 0.0.0.0:$PORT ${project}.wsgi:application`),
            framework: "Django",
            decision: `Start: gunicorn serves Django's ${project}.wsgi (manage.py names ${project}.settings; gunicorn is a dependency). Migrations are not run: add them to the build or a release job`,
          },
        };
      // Railpack serves Django with gunicorn; `manage.py runserver` is a development server (Django says so), never a production start.
      return {
        ok: false,
        reason: `Django app (manage.py names ${project}.settings) without gunicorn: add gunicorn to the dependencies, or set a start command or a Procfile web line (manage.py runserver is Django's development server, not for production)`,
      };
    }
  }
  for (const file of ["app.py", "main.py", "wsgi.py", "asgi.py"]) {
    const source = facts.sources[file];
    if (source === undefined) continue;
    const found = appVariable(source);
    if (!found) continue;
    const target = `${file.slice(0, -3)}:${found.name}`;
    const asgi = ASGI_FACTORIES.has(found.factory);
    if (asgi && uvicorn)
      return {
        ok: true,
        value: {
          start: server(`uvicorn ${target} --host 0.0.0.0 --port $PORT`),
          framework: `ASGI app (${found.factory})`,
          decision: `Start: uvicorn serves the ASGI app ${target} (${found.factory}; uvicorn is a dependency)`,
        },
      };
    if (!asgi && gunicorn)
      return {
        ok: true,
        value: {
          start: server(`gunicorn --bind 0.0.0.0:$PORT ${target}`),
          framework: `WSGI app (${found.factory})`,
          decision: `Start: gunicorn serves the WSGI app ${target} (${found.factory}; gunicorn is a dependency)`,
        },
      };
  }
  for (const file of ["app.py", "main.py"]) {
    if (facts.files.has(file))
      return {
        ok: true,
        value: {
          start: command(".venv/bin/python", file),
          framework: "Python",
          decision: `Start: python ${file} (${file} at the root${gunicorn || uvicorn ? "; no app object for the server it depends on" : "; no gunicorn or uvicorn among the dependencies"}: it must listen on $PORT itself)`,
        },
      };
  }
  return { ok: true, value: { start: null, framework: "Python", decision: "Start: none detected (no manage.py, app.py or main.py)" } };
}

/** The Python plan of facts `isPythonApp` accepts; `pythonVersion` is the service's setting, winning over the files. */
export function detectPythonPlan(facts: PythonFacts, pythonVersion?: string): Result<PythonPlan> {
  const version = pythonRequest(facts, pythonVersion);
  if (!version.ok) return version;
  const deps = dependencies(facts);
  if (!deps.ok) return deps;
  const start = detectStart(facts, deps.value.names);
  if (!start.ok) return start;
  const versionDecision = version.value
    ? `Python: ${version.value.spec} (from ${version.value.source}), an interpreter of the engine's host`
    : "Python: the engine host's python3 (no .python-version, runtime.txt or pythonVersion)";
  return {
    ok: true,
    value: {
      installs: deps.value.installs,
      start: start.value.start,
      framework: start.value.framework,
      decisions: [versionDecision, deps.value.decision, start.value.decision],
      version: version.value,
      generated: deps.value.generated,
    },
  };
}
