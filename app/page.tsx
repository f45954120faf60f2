/**
 * The landing page until the dashboard lands: what Slipway is, and the CLI commands that take
 * an app from a git repository to a live URL.
 */
const steps = [
  { title: "Log the CLI in (npm start already did it on the first boot)", command: "npx slipway login" },
  { title: "Create a project and an environment", command: "npx slipway project create demo && npx slipway env create demo/dev" },
  {
    title: "Add a service built from git",
    command: "npx slipway service create demo/dev/web --git https://github.com/you/app.git --branch main",
  },
  { title: "Deploy and watch it go live", command: "npx slipway deploy demo/dev --watch" },
];

export default function HomePage() {
  return (
    <main>
      <h1>Slipway</h1>
      <p className="lead">
        An open-source, self-hostable deployment platform. Push to git and the app is live: environments on demand,
        encrypted secrets, logs and metrics for every service, on infrastructure you control.
      </p>

      <h2>Deploy from the command line</h2>
      <ol className="steps">
        {steps.map((step) => (
          <li key={step.command}>
            {step.title}
            <pre>
              <code>{step.command}</code>
            </pre>
          </li>
        ))}
      </ol>

      <h2>Where your apps live</h2>
      <p>
        Each service gets its own address on the router: <code>{"http://<service>-<env>-<project>.localhost:8080"}</code>.
        Apps and the router keep serving while the control plane restarts.
      </p>

      <footer>
        <p>The dashboard is on its way. Until then, every action is available through the CLI and the REST API.</p>
      </footer>
    </main>
  );
}
