// `npm run sample`: regenerate the embedded sample under data/ (lib/sample.ts).
import { main } from "../sample";

main();
