import { describe, expect, it } from "vitest";
import { detectBuildPlan, type RepoFacts } from "../build-plan";
import { chooseInterpreter } from "../toolchains/python";
import { detectPythonPlan, djangoProject, PIPFILE_REQUIREMENTS, pipfileRequirements, type PythonFacts, pythonRequest } from "./python";

function facts(extra: Partial<Omit<PythonFacts, "files">> & { files?: string[] } = {}): PythonFacts {
  const { files, ...rest } = extra;
  return {
    requirementsTxt: null,
    pyprojectToml: null,
    pipfileLock: null,
    pythonVersionFile: null,
    runtimeTxt: null,
    sources: {},
    ...rest,
    files: new Set(files ?? Object.keys(rest.sources ?? {})),
  };
}

function plan(input: PythonFacts, pythonVersion?: string) {
  const detected = detectPythonPlan(input, pythonVersion);
  if (!detected.ok) throw new Error(detected.reason);
  return detected.value;
}

const flask = 'from flask import Flask\n\napp = Flask(__name__)\n\n@app.get("/")\ndef index():\n    return "hi"\n';

describe("Python dependencies", () => {
  it("installs requirements.txt with pip in a virtualenv of the app directory", () => {
    const detected = plan(facts({ requirementsTxt: "flask==2.2.2\n", sources: { "app.py": flask } }));
    expect(detected.installs.map((step) => step.display)).toEqual([
      "python3 -m venv .venv",
      ".venv/bin/pip install --disable-pip-version-check --no-input -r requirements.txt",
    ]);
  });

  it("installs a pyproject.toml project with a build system as itself, and one without from its dependencies", () => {
    const project = '[project]\nname = "site"\nversion = "1.0"\ndependencies = ["flask>=2", "gunicorn"]\n';
    const built = plan(
      facts({
        pyprojectToml: `${project}\n[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n`,
        sources: { "app.py": flask },
      }),
    );
    expect(built.installs.at(-1)?.argv.slice(-1)).toEqual(["."]);
    expect(built.decisions).toContain("Dependencies: pip install . (pyproject.toml has a [build-system])");
    const bare = plan(facts({ pyprojectToml: project, sources: { "app.py": flask } }));
    expect(bare.installs.at(-1)?.argv.slice(-2)).toEqual(["flask>=2", "gunicorn"]);
    // gunicorn among [project].dependencies serves the app.
    expect(bare.start?.display).toBe("gunicorn --bind 0.0.0.0:$PORT app:app");
  });

  it("refuses a pyproject.toml that is not TOML, naming the file", () => {
    expect(detectPythonPlan(facts({ pyprojectToml: "[project\n", files: ["app.py"] }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining("pyproject.toml is not valid TOML"),
    });
  });

  it("turns Pipfile.lock's default packages into pinned requirements with their hashes, installed with --require-hashes", () => {
    const lock = JSON.stringify({
      _meta: {},
      default: {
        flask: { version: "==2.2.2", hashes: ["sha256:aa", "sha256:bb"] },
        gunicorn: { version: "==20.1.0", hashes: ["sha256:cc"], markers: "python_version >= '3.5'" },
      },
      develop: { pytest: { version: "==8.0.0", hashes: ["sha256:dd"] } },
    });
    const detected = plan(facts({ pipfileLock: lock, sources: { "app.py": flask } }));
    expect(detected.generated).toEqual([
      {
        path: PIPFILE_REQUIREMENTS,
        text: expect.stringContaining("flask==2.2.2 --hash=sha256:aa --hash=sha256:bb\ngunicorn==20.1.0; python_version >= '3.5' --hash=sha256:cc\n"),
      },
    ]);
    expect(detected.generated[0]!.text).not.toContain("pytest");
    expect(detected.installs.at(-1)?.argv).toContain("--require-hashes");
    expect(detected.start?.display).toBe("gunicorn --bind 0.0.0.0:$PORT app:app");
  });

  it("refuses a Pipfile.lock package without a pinned version and hashes (a git dependency)", () => {
    const lock = JSON.stringify({ default: { mylib: { git: "https://example.com/mylib.git", ref: "abc" } } });
    expect(pipfileRequirements(lock)).toMatchObject({ ok: false, reason: expect.stringContaining("Pipfile.lock pins mylib with no ==version and hashes") });
  });
});

describe("Python start detection", () => {
  it("serves a Flask app with gunicorn when gunicorn is a dependency, else runs app.py", () => {
    expect(plan(facts({ requirementsTxt: "Flask\ngunicorn==20.1.0\n", sources: { "app.py": flask } })).start).toEqual({
      argv: ["/bin/sh", "-c", "exec gunicorn --bind 0.0.0.0:$PORT app:app"],
      display: "gunicorn --bind 0.0.0.0:$PORT app:app",
    });
    const plain = plan(facts({ requirementsTxt: "Flask\n", sources: { "app.py": flask } }));
    expect(plain.start?.argv).toEqual([".venv/bin/python", "app.py"]);
    expect(plain.decisions.at(-1)).toContain("no gunicorn or uvicorn among the dependencies");
  });

  it("finds `application` in wsgi.py, and an ASGI app for uvicorn", () => {
    const wsgi = plan(facts({ requirementsTxt: "gunicorn\n", sources: { "wsgi.py": "import falcon\napplication = falcon.App()\n" } }));
    expect(wsgi.start?.display).toBe("gunicorn --bind 0.0.0.0:$PORT wsgi:application");
    const asgi = plan(
      facts({ requirementsTxt: "starlette\nuvicorn\n", sources: { "main.py": "from starlette.applications import Starlette\napp = Starlette(routes=[])\n" } }),
    );
    expect(asgi.start?.display).toBe("uvicorn main:app --host 0.0.0.0 --port $PORT");
    expect(asgi.decisions).toContain("Start: uvicorn serves the ASGI app main:app (Starlette; uvicorn is a dependency)");
    // An ASGI app is not handed to gunicorn.
    expect(
      plan(facts({ requirementsTxt: "fastapi\ngunicorn\n", sources: { "main.py": "from fastapi import FastAPI\napp = FastAPI()\n" } })).start?.display,
    ).toBe(".venv/bin/python main.py");
  });

  it("serves Django's WSGI module with gunicorn, and refuses its development server", () => {
    const manage = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n';
    expect(djangoProject(manage)).toBe("mysite");
    expect(plan(facts({ requirementsTxt: "django\ngunicorn\n", sources: { "manage.py": manage } })).start?.display).toBe(
      "gunicorn --bind 0.0.0.0:$PORT mysite.wsgi:application",
    );
    expect(detectPythonPlan(facts({ requirementsTxt: "django\n", sources: { "manage.py": manage } }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining("without gunicorn: add gunicorn to the dependencies, or set a start command or a Procfile web line"),
    });
  });

  it("lets a Procfile's web process win, named in the decisions, and with it a Django app needs no gunicorn", () => {
    const repo: RepoFacts = {
      files: new Set(["requirements.txt", "manage.py", "Procfile"]),
      packageJson: null,
      procfile: "web: python manage.py runserver 0.0.0.0:$PORT\n",
      requirementsTxt: "django\n",
      nvmrc: null,
      nodeVersionFile: null,
      pnpmLock: null,
      python: {
        pyprojectToml: null,
        pipfileLock: null,
        pythonVersionFile: null,
        runtimeTxt: null,
        sources: { "manage.py": 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")' },
      },
    };
    const detected = detectBuildPlan(repo);
    if (!detected.ok) throw new Error(detected.reason);
    expect(detected.plan.start).toMatchObject({ display: "python manage.py runserver 0.0.0.0:$PORT" });
    expect(detected.plan.python?.decisions).toContain("Start: python manage.py runserver 0.0.0.0:$PORT (the Procfile's web process)");
  });

  it("detects a stdlib app with only app.py (no requirements file) as Python", () => {
    const detected = detectBuildPlan({
      files: new Set(["app.py"]),
      packageJson: null,
      procfile: null,
      requirementsTxt: null,
      nvmrc: null,
      nodeVersionFile: null,
      pnpmLock: null,
      python: { pyprojectToml: null, pipfileLock: null, pythonVersionFile: null, runtimeTxt: null, sources: { "app.py": "import http.server\n" } },
    });
    expect(detected).toMatchObject({ ok: true, plan: { kind: "python", start: { argv: [".venv/bin/python", "app.py"] } } });
  });
});

describe("Python version", () => {
  it("reads the service's pythonVersion, then .python-version, then runtime.txt", () => {
    const both = { pythonVersionFile: "# pyenv\n3.12\n", runtimeTxt: "python-3.11.9\n" };
    expect(pythonRequest(both)).toEqual({ ok: true, value: { source: ".python-version", spec: "3.12", parts: [3, 12] } });
    expect(pythonRequest({ pythonVersionFile: null, runtimeTxt: "python-3.11.9\n" })).toEqual({
      ok: true,
      value: { source: "runtime.txt", spec: "python-3.11.9", parts: [3, 11, 9] },
    });
    expect(pythonRequest(both, "3.10")).toMatchObject({ ok: true, value: { source: "the service's pythonVersion", parts: [3, 10] } });
    expect(pythonRequest({ pythonVersionFile: "pypy3.10\n", runtimeTxt: null })).toEqual({
      ok: false,
      reason: '.python-version "pypy3.10" is not a Python version such as 3.12 or 3.11.9',
    });
  });

  it("takes the highest host interpreter that matches, the host's python3 without a request, and none that does not match", () => {
    const found = [
      { path: "/usr/bin/python3.11", version: "3.11.2", prefix: "/usr" },
      { path: "/opt/py/bin/python3.11", version: "3.11.7", prefix: "/opt/py" },
      { path: "/usr/bin/python3.12", version: "3.12.1", prefix: "/usr" },
    ];
    const request = (spec: string) => ({ source: "runtime.txt" as const, spec, parts: spec.split(".").map(Number) });
    expect(chooseInterpreter(request("3.11"), found, found[2]!)?.path).toBe("/opt/py/bin/python3.11");
    expect(chooseInterpreter(request("3.11.2"), found, found[2]!)?.path).toBe("/usr/bin/python3.11");
    expect(chooseInterpreter(request("3"), found, found[0]!)?.version).toBe("3.12.1");
    expect(chooseInterpreter(null, found, found[0]!)?.path).toBe("/usr/bin/python3.11");
    expect(chooseInterpreter(request("3.9"), found, found[0]!)).toBeNull();
  });
});
