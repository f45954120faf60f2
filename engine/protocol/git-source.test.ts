import { describe, expect, it } from "vitest";
import { branchProblem, credentialScope, credentialsProblem, parseGitUrl, repositoryPathProblem, sshKeyProblem } from "./git-source";

const parsed = (url: string) => {
  const result = parseGitUrl(url);
  if (!result.ok) throw new Error(`${url} refused: ${result.message}`);
  return result.value;
};

describe("parseGitUrl", () => {
  it("accepts the remote forms git clones without running a command of its own", () => {
    expect(parsed("https://github.com/acme/app.git")).toEqual({
      transport: "https",
      local: false,
      url: "https://github.com/acme/app.git",
      credentials: null,
      origin: "https://github.com",
    });
    expect(parsed("git@github.com:acme/app.git")).toMatchObject({ transport: "ssh", local: false, url: "git@github.com:acme/app.git" });
    expect(parsed("ssh://git@gitlab.example:2222/group/app.git")).toMatchObject({ transport: "ssh", url: "ssh://git@gitlab.example:2222/group/app.git" });
    expect(parsed("git://git.kernel.org/pub/scm/git/git.git")).toMatchObject({ transport: "git", origin: null });
    expect(parsed("http://[::1]:8080/app.git")).toMatchObject({ transport: "http", origin: "http://[::1]:8080" });
  });

  it("takes an http(s) URL's credentials out of it", () => {
    expect(parsed("https://x-access-token:ghp_abc%2Fdef@GitHub.com/acme/app.git")).toEqual({
      transport: "https",
      local: false,
      url: "https://GitHub.com/acme/app.git",
      credentials: { username: "x-access-token", password: "ghp_abc/def" },
      origin: "https://github.com",
    });
    expect(parsed("https://ghp_token@github.com/acme/app.git").credentials).toEqual({ username: "ghp_token", password: "" });
  });

  it("marks file:// URLs and absolute paths as local", () => {
    expect(parsed("file:///srv/git/app.git")).toMatchObject({ transport: "file", local: true });
    expect(parsed("/srv/git/app.git")).toMatchObject({ transport: "file", local: true });
  });

  it("sends credentials only over https or to this host", () => {
    expect(credentialsProblem(parsed("https://example.com/a.git"))).toBeNull();
    expect(credentialsProblem(parsed("http://127.0.0.1:9418/a.git"))).toBeNull();
    expect(credentialsProblem(parsed("http://example.com/a.git"))).toBe("credentials are sent only over https: use an https URL");
    expect(credentialsProblem(parsed("git@example.com:a.git"), "deploy key")).toBeNull();
    expect(credentialsProblem(parsed("https://example.com/a.git"), "deploy key")).toBe(
      "a deploy key is for ssh URLs (ssh://… or git@host:path); an https URL takes a token",
    );
  });

  it("keeps stored credentials for the same host only: origin for http(s), host and port for ssh", () => {
    expect(credentialScope(parsed("https://x:y@GitHub.com/acme/a.git"))).toBe("https://github.com");
    expect(credentialScope(parsed("git@GitHub.com:acme/a.git"))).toBe("ssh://github.com");
    expect(credentialScope(parsed("ssh://git@github.com/acme/b.git"))).toBe("ssh://github.com");
    expect(credentialScope(parsed("ssh://git@github.com:2222/acme/b.git"))).toBe("ssh://github.com:2222");
    expect(credentialScope(parsed("git://github.com/acme/a.git"))).toBeNull();
  });
});

describe("branch and path rules", () => {
  it("accepts ordinary branch names and refuses what git would not take as one", () => {
    for (const branch of ["main", "release/1.2", "feature/x_y-z", "v1.0"]) expect(branchProblem(branch), branch).toBeNull();
    expect(branchProblem("-x")).toBe("must not start with '-': git would read it as an option");
    expect(branchProblem("a..b")).toBe("must not contain '..'");
    expect(branchProblem("a b")).toBe("must not contain spaces or any of ~ ^ : ? * [ \\");
    expect(branchProblem("HEAD@{1}")).toBe("must not be '@' or contain '@{'");
    expect(branchProblem("x/.hidden")).toBe("no part may start with '.' or end with '.lock'");
  });

  it("keeps repository paths relative and inside", () => {
    expect(repositoryPathProblem("")).toBeNull();
    expect(repositoryPathProblem("apps/web")).toBeNull();
    expect(repositoryPathProblem("../x")).toBe("must not contain '..': the path must stay inside the repository");
    expect(repositoryPathProblem("/etc")).toBe("must be a path inside the repository, relative to its root");
    expect(repositoryPathProblem("-rf")).toBe("must not start with '-'");
  });
});

describe("sshKeyProblem", () => {
  const pem = (type: string, body: string, headers = "") => `-----BEGIN ${type}PRIVATE KEY-----\n${headers}${body}\n-----END ${type}PRIVATE KEY-----\n`;
  // openssh-key-v1, then the cipher's name, as ssh-keygen writes it (the rest of the key does not matter here).
  const openssh = (cipher: string) => {
    const name = String.fromCharCode(0, 0, 0, cipher.length) + cipher;
    return pem("OPENSSH ", btoa(`openssh-key-v1\0${name}${"\0".repeat(32)}`));
  };

  it("takes an unencrypted private key, PEM or OpenSSH", () => {
    expect(sshKeyProblem(openssh("none"))).toBeNull();
    expect(sshKeyProblem(pem("RSA ", "MIIEow"))).toBeNull();
    expect(sshKeyProblem(pem("", "MIIEvQ").replace(/\n/g, "\r\n"))).toBeNull();
  });

  it("refuses what ssh could not use unattended, saying what to do", () => {
    const passphrase = "the key has a passphrase, which nobody can type at deploy time: remove it (ssh-keygen -p -N '' -f <file>) or make a key without one";
    expect(sshKeyProblem(openssh("aes256-ctr"))).toBe(passphrase);
    expect(sshKeyProblem(pem("RSA ", "MIIEow", "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n"))).toBe(passphrase);
    expect(sshKeyProblem(pem("ENCRYPTED ", "MIIFHz"))).toBe(passphrase);
    expect(sshKeyProblem("ssh-ed25519 AAAAC3Nza… bot@ci")).toBe(
      "this is a public key: give the private key (the file without .pub) and add the public one to the repository",
    );
    expect(sshKeyProblem("")).toBe("enter the deploy key's private key");
    expect(sshKeyProblem(pem("OPENSSH ", "bm90IGEga2V5"))).toBe("the key is not an OpenSSH private key");
    expect(sshKeyProblem("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----")).toMatch(/^expected a private key file/);
  });
});
