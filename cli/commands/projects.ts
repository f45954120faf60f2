import type { Command } from "commander";
import type { Project } from "../api-types";
import { assertDeletionConfirmable, confirmDeletion } from "../confirm";
import type { Context } from "../context";
import { formatAge, table } from "../format";
import { parsePath } from "../paths";

export function registerProjectCommands(program: Command, ctx: Context): void {
  const project = program.command("project").description("Projects: list, create, delete");

  project
    .command("list")
    .description("List the organization's projects")
    .option("--json", "print the API objects")
    .action(async (options: { json?: boolean }) => {
      const projects = await (await ctx.api()).get<Project[]>("/projects");
      if (options.json) return ctx.printJson(projects);
      if (projects.length === 0) return ctx.print("No projects yet: slipway project create <name>");
      ctx.print(
        table(projects, [
          { header: "NAME", value: (p) => p.name },
          { header: "CREATED", value: (p) => formatAge(p.createdAt) },
          { header: "ID", value: (p) => p.id },
        ]),
      );
    });

  project
    .command("create")
    .description("Create a project")
    .argument("<name>", "lowercase letters, digits and inner hyphens")
    .option("--json", "print the API object")
    .action(async (name: string, options: { json?: boolean }) => {
      const created = await (await ctx.api()).post<Project>("/projects", { name });
      if (options.json) return ctx.printJson(created);
      ctx.print(`Created project ${created.name} (${created.id})`);
    });

  project
    .command("delete")
    .description("Delete a project that has no environments left")
    .argument("<name>")
    .option("--yes", "do not ask for the project's name (required without a terminal)")
    .option("--json", "print the API object")
    .action(async (name: string, options: { yes?: boolean; json?: boolean }) => {
      const path = parsePath(name, { min: 1, max: 1 });
      const deletion = { what: `project ${path.text}`, name: path.project, consequence: "it goes with its settings and project variables", yes: options.yes };
      assertDeletionConfirmable(ctx, deletion);
      const api = await ctx.api();
      const { projectId } = await api.resolve(path.text);
      await confirmDeletion(ctx, deletion);
      const deleted = await api.delete<Project>(`/projects/${projectId}`);
      if (options.json) return ctx.printJson(deleted);
      ctx.print(`Deleted project ${deleted.name}`);
    });
}
