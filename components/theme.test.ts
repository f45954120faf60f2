import { DEFAULT_THEME, mergeMantineTheme } from "@mantine/core";
import { describe, expect, it } from "vitest";
import { contrast, cssVariablesResolver, theme } from "./theme";

const resolved = cssVariablesResolver(mergeMantineTheme(DEFAULT_THEME, theme));
const { colors } = DEFAULT_THEME;

/** A variable's colour, following `var(--…)` references through the resolved variables. */
function value(scheme: "light" | "dark", name: `--${string}`): string {
  const raw = resolved[scheme][name] ?? resolved.variables[name];
  if (!raw) throw new Error(`${name} is not set`);
  const reference = /^var\((--[\w-]+)\)$/.exec(raw);
  return reference ? value(scheme, reference[1] as `--${string}`) : raw;
}

describe("the theme's colours reach WCAG AA (4.5:1) for text", () => {
  it("dimmed text on the page and on the lightest surfaces, in both schemes", () => {
    expect(contrast(value("light", "--mantine-color-dimmed"), "#ffffff")).toBeGreaterThanOrEqual(4.5);
    for (const [name, shades] of Object.entries(colors)) {
      expect(contrast(value("light", "--mantine-color-dimmed"), shades[1]), `on ${name} 1`).toBeGreaterThanOrEqual(4.5);
    }
    for (const surface of [colors.dark[7], colors.dark[6], colors.dark[5]]) {
      expect(contrast(value("dark", "--mantine-color-dimmed"), surface)).toBeGreaterThanOrEqual(4.5);
    }
  });

  it("white on every filled colour (primary buttons included), in both schemes", () => {
    for (const scheme of ["light", "dark"] as const) {
      for (const name of Object.keys(colors)) {
        expect(contrast("#ffffff", value(scheme, `--mantine-color-${name}-filled`)), `${scheme} ${name}`).toBeGreaterThanOrEqual(4.5);
      }
    }
  });

  it("coloured text on white and light-variant labels (status badges, active links) on their tint, hovered too", () => {
    for (const name of Object.keys(colors)) {
      expect(contrast(value("light", `--mantine-color-${name}-text`), colors.gray[1]), name).toBeGreaterThanOrEqual(4.5);
      for (const tint of [`--mantine-color-${name}-light`, `--mantine-color-${name}-light-hover`] as const) {
        expect(contrast(value("light", `--mantine-color-${name}-light-color`), value("light", tint)), `${name} on ${tint}`).toBeGreaterThanOrEqual(4.5);
      }
    }
  });

  it("coloured text and links in the dark scheme, on the page, cards and hovered rows", () => {
    for (const surface of [colors.dark[7], colors.dark[6], colors.dark[5]]) {
      expect(contrast(value("dark", "--mantine-color-anchor"), surface)).toBeGreaterThanOrEqual(4.5);
      for (const name of Object.keys(colors)) {
        expect(contrast(value("dark", `--mantine-color-${name}-text`), surface), name).toBeGreaterThanOrEqual(4.5);
      }
    }
  });

  it("links and errors", () => {
    // On white and on a hovered table row.
    expect(contrast(value("light", "--mantine-color-anchor"), colors.gray[1])).toBeGreaterThanOrEqual(4.5);
    expect(contrast(value("light", "--mantine-color-error"), "#ffffff")).toBeGreaterThanOrEqual(4.5);
    expect(contrast(value("dark", "--mantine-color-error"), colors.dark[7])).toBeGreaterThanOrEqual(4.5);
  });
});
