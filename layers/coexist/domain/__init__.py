"""Domain rules of a WhatsApp Coexistence inbox, free of AWS and HTTP."""
