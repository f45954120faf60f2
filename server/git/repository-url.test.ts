import { describe, expect, it } from "vitest";
import { repositoryKey, sameRepository } from "./repository-url";

describe("repositoryKey", () => {
  it("gives https, ssh, scp-like and git URLs of one repository the same key", () => {
    const forms = [
      "https://github.com/Codertocat/Hello-World.git",
      "https://github.com/codertocat/hello-world",
      "https://github.com/Codertocat/Hello-World/",
      "http://user:token@github.com/Codertocat/Hello-World.git",
      "git@github.com:Codertocat/Hello-World.git",
      "github.com:Codertocat/Hello-World",
      "ssh://git@github.com/Codertocat/Hello-World.git",
      "ssh://git@github.com:22/Codertocat/Hello-World",
      "git://github.com/Codertocat/Hello-World.git",
    ];
    for (const form of forms) expect(repositoryKey(form), form).toBe("github.com/codertocat/hello-world");
  });

  it("keeps what tells repositories apart: host, owner, nested groups", () => {
    expect(sameRepository("https://github.com/a/app.git", "https://gitlab.com/a/app.git")).toBe(false);
    expect(sameRepository("https://github.com/a/app.git", "https://github.com/b/app.git")).toBe(false);
    expect(repositoryKey("git@gitlab.com:group/sub/app.git")).toBe("gitlab.com/group/sub/app");
    expect(sameRepository("https://gitlab.com/group/sub/app", "ssh://git@gitlab.com:2222/group/sub/app.git")).toBe(true);
    expect(repositoryKey("http://127.0.0.1:41234/shop.git")).toBe("127.0.0.1/shop");
  });

  it("keeps file paths and refuses what is not a URL", () => {
    expect(repositoryKey("file:///srv/git/app.git")).toBe("file:///srv/git/app");
    expect(repositoryKey("")).toBeNull();
    expect(repositoryKey("not a url")).toBeNull();
    expect(repositoryKey("https://github.com/")).toBeNull();
  });

  it("gives a key for a URL with a stray % instead of throwing, and still decodes valid escapes", () => {
    // Accepted when a service is saved; a throw here failed its organization's webhook deliveries.
    expect(repositoryKey("https://github.com/acme/app%")).toBe("github.com/acme/app%");
    expect(repositoryKey("https://git.example.com/acme/a%zzb.git")).toBe("git.example.com/acme/a%zzb");
    expect(repositoryKey("file:///srv/git/a%e9.git")).toBe("file:///srv/git/a%e9");
    expect(repositoryKey("https://github.com/acme/100%25-app")).toBe("github.com/acme/100%-app");
    expect(sameRepository("https://github.com/acme/caf%C3%A9.git", "git@github.com:acme/café")).toBe(true);
  });
});
