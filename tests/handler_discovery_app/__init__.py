"""An installed app whose ``ssf_receivers`` module the receiver app must discover."""
