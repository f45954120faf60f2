import { createTheme, darken, defaultCssVariablesResolver, lighten, luminance, type CSSVariablesResolver, type MantineColorsTuple } from "@mantine/core";

/** WCAG 2.1 AA for normal text (1.4.3). */
const AA = 4.5;

/** The WCAG contrast ratio of two colours. */
export function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

/** `color`, darkened (or lightened) in small steps until it reads at AA on every background. */
function readableOn(color: string, background: string | string[], direction: "darker" | "lighter" = "darker"): string {
  const shift = direction === "darker" ? darken : lighten;
  const backgrounds = [background].flat();
  for (let amount = 0; amount <= 1; amount += 0.05) {
    const candidate = amount === 0 ? color : shift(color, amount);
    if (backgrounds.every((surface) => contrast(candidate, surface) >= AA)) return candidate;
  }
  return direction === "darker" ? "#000000" : "#ffffff";
}

/** The lightest shade from `from` on that carries white text at AA, else the darkest made darker. */
function filledShade(shades: MantineColorsTuple, from: number): string {
  const shade = shades.slice(from).find((candidate) => contrast("#ffffff", candidate) >= AA);
  return shade ?? readableOn(shades[9], "#ffffff");
}

/**
 * Mantine's defaults put white on indigo 6 (4.3:1), dimmed text at 3.3:1 and green or yellow
 * labels well below AA. These variables keep the palette's look and move each colour only as far
 * as AA needs, in both schemes: filled buttons and badges, coloured text, the light variant's
 * text on its tint, dimmed text (on the lightest surfaces tables and hovers use) and errors.
 */
export const cssVariablesResolver: CSSVariablesResolver = (theme) => {
  const base = defaultCssVariablesResolver(theme);
  const gray = theme.colors.gray;
  // Coloured text and links sit on white and on the grays of hovered rows and striped tables.
  const surfaces = ["#ffffff", gray[0], gray[1]];
  // The dark scheme's page, cards and hovered rows.
  const darkSurfaces = [theme.colors.dark[7], theme.colors.dark[6], theme.colors.dark[5]];
  const light: Record<string, string> = {};
  const dark: Record<string, string> = {};
  for (const [name, shades] of Object.entries(theme.colors)) {
    const lightFilled = filledShade(shades, 6);
    const darkFilled = filledShade(shades, 8);
    Object.assign(light, {
      [`--mantine-color-${name}-filled`]: lightFilled,
      [`--mantine-color-${name}-filled-hover`]: darken(lightFilled, 0.1),
      [`--mantine-color-${name}-text`]: readableOn(lightFilled, surfaces),
      // An outline badge's label is coloured text too, on cards' gray as well as on white.
      [`--mantine-color-${name}-outline`]: readableOn(lightFilled, surfaces),
      // The light variant's label sits on its tint (shade 1) and, hovered, on shade 2: an active
      // NavLink under the pointer is the second.
      [`--mantine-color-${name}-light-color`]: readableOn(shades[9], [shades[1], shades[2]]),
    });
    Object.assign(dark, {
      [`--mantine-color-${name}-text`]: readableOn(shades[4], darkSurfaces, "lighter"),
      [`--mantine-color-${name}-filled`]: darkFilled,
      [`--mantine-color-${name}-filled-hover`]: darken(darkFilled, 0.1),
    });
  }
  const primary = theme.colors[theme.primaryColor]!;
  const darkShades = theme.colors.dark;
  return {
    variables: { ...base.variables },
    light: {
      ...base.light,
      ...light,
      "--mantine-color-anchor": readableOn(filledShade(primary, 6), surfaces),
      // Dimmed text also sits on alerts' and light badges' tints (shade 1 of every colour).
      "--mantine-color-dimmed": readableOn(
        gray[6],
        Object.values(theme.colors).map((shades) => shades[1]),
      ),
      "--mantine-color-error": readableOn(theme.colors.red[6], "#ffffff"),
    },
    dark: {
      ...base.dark,
      ...dark,
      "--mantine-color-anchor": readableOn(primary[4], darkSurfaces, "lighter"),
      "--mantine-color-dimmed": readableOn(darkShades[2], darkSurfaces, "lighter"),
      "--mantine-color-error": theme.colors.red[4],
    },
  };
};

export const theme = createTheme({
  primaryColor: "indigo",
  // People who ask their system for less motion get dialogs, menus and toasts without transitions.
  respectReducedMotion: true,
  defaultRadius: "md",
  fontFamily: "Inter, ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif",
  fontFamilyMonospace: "ui-monospace, 'JetBrains Mono', 'SFMono-Regular', Menlo, monospace",
  components: {
    // Close buttons are icons: name them for screen readers (toasts and dialogs say what closes).
    CloseButton: { defaultProps: { "aria-label": "Close" } },
    Notification: { defaultProps: { closeButtonProps: { "aria-label": "Dismiss notification" } } },
    Modal: { defaultProps: { closeButtonProps: { "aria-label": "Close dialog" } } },
    // A menu's hidden focus placeholder is a role-less element with a tabindex, which a `menu`
    // may not own (axe: aria-required-children); without it, the keyboard lands on the first item.
    Menu: { defaultProps: { withInitialFocusPlaceholder: false } },
  },
});
