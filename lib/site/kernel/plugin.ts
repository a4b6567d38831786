// The JupyterLite plugin that registers the bertqa kernel: name "bertqa" and language "typescript", as in the
// notebooks' kernelspec, so JupyterLab opens them with it and asks nothing.
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { PageConfig, URLExt } from "@jupyterlab/coreutils";
import { IKernelClient, IKernelSpecs, type IKernel } from "@jupyterlite/services";
import { BertqaKernel, type SiteUrls } from "./kernel";

/** process.env in the kernel: the site's `bertqaEnv` (jupyter-lite.json), then BERTQA_* parameters of the page's URL. */
function kernelEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  try {
    Object.assign(env, JSON.parse(PageConfig.getOption("bertqaEnv") || "{}"));
  } catch {
    console.warn("bertqa kernel: bertqaEnv in jupyter-lite.json is not a JSON object; ignored");
  }
  return env;
}

function siteUrls(): SiteUrls {
  const root = new URL(PageConfig.getBaseUrl(), window.location.href).href;
  return {
    worker: URLExt.join(root, "kernel/worker.js"),
    types: URLExt.join(root, "bertqa/types.json"),
    bundle: URLExt.join(root, "bertqa/bertqa.js"),
    danfo: URLExt.join(root, "bertqa/danfojs.js"),
    files: URLExt.join(root, "files/"),
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "bertqa-kernel:plugin",
  description: "The bertqa TypeScript kernel: cells run in a Web Worker beside the workbook's library.",
  autoStart: true,
  requires: [IKernelSpecs, IKernelClient],
  activate: (_app: JupyterFrontEnd, specs: IKernelSpecs, client: IKernelClient) => {
    const env = kernelEnv();
    specs.register({
      spec: {
        name: "bertqa",
        display_name: "TypeScript (bertqa)",
        language: "typescript",
        argv: [],
        resources: {},
      },
      create: async (options: IKernel.IOptions) => new BertqaKernel({ ...options, urls: siteUrls(), env }),
    });
    // JupyterLite's interrupt only drops the queued cells (jupyterlite issue 459); tell the kernel too, so the running
    // cell's library work stops at its next step.
    const interrupt = client.interrupt.bind(client);
    client.interrupt = async (id: string) => {
      const kernel = (await client.getModel(id)) as unknown;
      if (kernel instanceof BertqaKernel) kernel.interrupt();
      return interrupt(id);
    };
  },
};

export default plugin;
