import "@mantine/core/styles.css";
import "@mantine/notifications/styles.css";
import "./globals.css";
import { ColorSchemeScript, mantineHtmlProps } from "@mantine/core";
import type { Metadata } from "next";
import type { ReactNode } from "react";
import { Providers } from "../components/providers";
import { SkipLink } from "../components/shell/skip-link";

export const metadata: Metadata = {
  title: { default: "Slipway", template: "%s · Slipway" },
  description: "Open-source, self-hostable deployment platform: push to git and the app is live.",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    // mantineHtmlProps silences the hydration warning for the colour-scheme attribute set before React runs.
    <html lang="en" {...mantineHtmlProps}>
      <head>
        <ColorSchemeScript defaultColorScheme="auto" />
      </head>
      <body>
        <SkipLink />
        <Providers>{children}</Providers>
      </body>
    </html>
  );
}
