"use client";

import { EffectiveVariables } from "../variables/effective-variables";
import { VariablesPanel } from "../variables/variables-panel";

/** The Variables tab: what the service receives, resolved across scopes, then its own variables. */
export function ServiceVariables({ serviceId }: { serviceId: string }) {
  return (
    <>
      <EffectiveVariables serviceId={serviceId} />
      <VariablesPanel
        scope="SERVICE"
        targetId={serviceId}
        description="Only this service receives them; they override environment and project variables with the same key."
      />
    </>
  );
}
