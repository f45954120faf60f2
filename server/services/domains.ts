/** A service's hostname on its cluster: `<service>-<environment>-<project>.<cluster domain>`. */
export function serviceDomain(service: string, environment: string, project: string, suffix: string): string {
  return `${service}-${environment}-${project}.${suffix}`;
}
