// Words of the 模拟 / SIMULATED badge (simulated-badge.js): data only, looked up with i18n.js's t().
import { addWords } from "./i18n.js";

addWords({
  zh: {
    "simulated.badge": "模拟",
    "simulated.title": "模拟告警：由演示程序生成，检测框是随机的，不是真实识别结果",
  },
  en: {
    "simulated.badge": "SIMULATED",
    "simulated.title": "Simulated alert: made up by the demo, its box is random, not a real detection",
  },
});
